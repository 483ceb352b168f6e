"""Plots a load run's latencies over the run (tools/bench-load.sh): one point per ack and per
delivery, at the time its message was sent, with the rolling p50 and p99 of deliveries.

    plot_latency.py latency.csv out.png "title"
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(src, out, title):
    rows = {"ack": ([], []), "delivery": ([], [])}
    with open(src, newline="") as f:
        for row in csv.DictReader(f):
            t, ms = float(row["t_s"]), float(row["latency_ms"])
            rows[row["kind"]][0].append(t)
            rows[row["kind"]][1].append(ms)
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    dt, dms = (np.array(v) for v in rows["delivery"])
    at, ams = (np.array(v) for v in rows["ack"])
    ax.scatter(dt, dms, s=2, alpha=0.25, color="tab:blue", label="send → delivery (each socket)")
    ax.scatter(at, ams, s=6, alpha=0.6, color="tab:orange", label="send → ack")
    if len(dt):
        order = np.argsort(dt)
        dt, dms = dt[order], dms[order]
        edges = np.arange(0, dt.max() + 1.0, 1.0)
        mids, p50, p99 = [], [], []
        for lo in edges:
            window = dms[(dt >= lo) & (dt < lo + 1.0)]
            if len(window):
                mids.append(lo + 0.5)
                p50.append(np.percentile(window, 50))
                p99.append(np.percentile(window, 99))
        ax.plot(mids, p50, color="black", linewidth=1.2, label="delivery p50 (1 s windows)")
        ax.plot(mids, p99, color="tab:red", linewidth=1.2, label="delivery p99 (1 s windows)")
    ax.set_xlabel("time the message was sent (s since the first send)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
