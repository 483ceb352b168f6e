// Preloaded into kinesis-local (`node --require`): every server of the process listens on
// 127.0.0.1 only. kinesis-local binds its plain and TLS ports to 0.0.0.0 and has no option to
// change it. Handles the forms of `listen` Node documents: (options[, cb]) and
// (port[, host][, backlog][, cb]).
"use strict";
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === "object") {
    args[0] = { ...args[0], host: "127.0.0.1" };
  } else if (typeof args[1] === "string") {
    args[1] = "127.0.0.1";
  } else {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
