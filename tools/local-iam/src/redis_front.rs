//! ElastiCache's IAM authentication in front of the local redis-server: a connection must first
//! send `AUTH <user> <token>`, where the user is the functions' ElastiCache user
//! ([`StackFacts::cache_user`]) and the token a URL presigned for `elasticache` by a function's
//! credentials that names this cache and that user ([`crate::sigv4::verify_presigned`]), and the
//! function's role must allow `elasticache:Connect` on both the cache and the user, as AWS
//! requires. Until then every command is answered `NOAUTH`; a refused `AUTH` is answered
//! `WRONGPASS`, as ElastiCache answers it (the reason goes to this process's log). Once
//! authenticated, the connection is spliced to redis-server byte for byte.
//!
//! Not mirrored: TLS (ElastiCache requires it; the local Redis speaks plain TCP), the 12-hour
//! disconnect, and `HELLO 3 AUTH` (the functions' client authenticates with `AUTH`).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::policy::{Authorization, StackFacts};
use crate::service::{LocalIam, Refusal};
use crate::sigv4::verify_presigned;

/// What a command line or argument may be: far more than an `AUTH` with a token needs.
const MAX_ARGUMENT: usize = 64 * 1024;
const MAX_ARGUMENTS: usize = 64;

/// ElastiCache's answers.
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";

impl LocalIam {
    /// Serves the IAM-checked front of the Redis at `upstream` (`host:port`) on a free loopback
    /// port, for as long as the runtime runs; its `redis://` URL.
    pub async fn start_redis_front(self: &Arc<Self>, upstream: &str) -> std::io::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("redis://{}", listener.local_addr()?);
        let iam = self.clone();
        let upstream = upstream.to_owned();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(iam.clone(), client, upstream.clone()));
            }
        });
        Ok(url)
    }

    /// Checks `AUTH user token` as ElastiCache does for a user in IAM mode; the function whose
    /// credentials signed the token.
    pub fn authenticate_redis(
        &self,
        user: &str,
        token: &str,
        now: SystemTime,
    ) -> Result<String, Refusal> {
        let facts = self.facts();
        if user != facts.cache_user() {
            return Err(Refusal::Denied(format!(
                "no IAM user {user:?} on this cache"
            )));
        }
        let claims = verify_presigned(token, self.secret(), now)?;
        let function = claims.signer.access_key.clone();
        if claims.signer.region != facts.region || claims.signer.service != "elasticache" {
            return Err(Refusal::WrongScope);
        }
        let asked = |name: &str| {
            claims
                .parameters
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if claims.host != facts.cache_id()
            || asked("Action") != Some("connect")
            || asked("User") != Some(user)
        {
            return Err(Refusal::Denied(format!(
                "the token is for {:?} as {:?}, not this cache as {user:?}",
                claims.host,
                asked("User")
            )));
        }
        if !self.knows(&function) {
            return Err(Refusal::UnknownKey);
        }
        self.check(&function, &connect_authorizations(facts))?;
        Ok(function)
    }
}

/// What a connection asks `elasticache:Connect` on: the cache and the user.
pub fn connect_authorizations(facts: &StackFacts) -> [Authorization; 2] {
    [
        Authorization::new(
            "elasticache:Connect",
            facts.elasticache_arn("replicationgroup", &facts.cache_id()),
        ),
        Authorization::new(
            "elasticache:Connect",
            facts.elasticache_arn("user", &facts.cache_user()),
        ),
    ]
}

async fn serve(iam: Arc<LocalIam>, client: TcpStream, upstream: String) {
    let mut client = BufReader::new(client);
    loop {
        let Ok(Some(command)) = read_command(&mut client).await else {
            return;
        };
        let name = command
            .first()
            .map(|c| c.to_ascii_uppercase())
            .unwrap_or_default();
        let answer = match (name.as_slice(), &command[1..]) {
            (b"AUTH", [user, token]) => {
                let user = String::from_utf8_lossy(user);
                let token = String::from_utf8_lossy(token);
                match iam.authenticate_redis(&user, &token, SystemTime::now()) {
                    Ok(_) => return splice(client, &upstream).await,
                    Err(refusal) => {
                        tracing::warn!(%refusal, "redis AUTH refused");
                        WRONGPASS
                    }
                }
            }
            // `AUTH <password>` is the disabled default user's.
            (b"AUTH", _) => WRONGPASS,
            _ => NOAUTH,
        };
        if client.get_mut().write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Answers the `AUTH` and joins the client to redis-server, commands it already sent first; a
/// Redis that cannot be reached closes the client's connection.
async fn splice(client: BufReader<TcpStream>, upstream: &str) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let pending = client.buffer().to_vec();
    let mut client = client.into_inner();
    if client.write_all(b"+OK\r\n").await.is_err() || server.write_all(&pending).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// One command as clients send it (an array of bulk strings); `None` at the end of the stream.
async fn read_command<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Vec<Vec<u8>>>> {
    let Some(count) = read_header(reader, b'*').await? else {
        return Ok(None);
    };
    if count == 0 || count > MAX_ARGUMENTS {
        return Err(invalid("command size"));
    }
    let mut arguments = Vec::with_capacity(count);
    for _ in 0..count {
        let length = read_header(reader, b'$')
            .await?
            .ok_or_else(|| invalid("end of stream"))?;
        if length > MAX_ARGUMENT {
            return Err(invalid("argument size"));
        }
        let mut argument = vec![0; length + 2];
        reader.read_exact(&mut argument).await?;
        if !argument.ends_with(b"\r\n") {
            return Err(invalid("argument end"));
        }
        argument.truncate(length);
        arguments.push(argument);
    }
    Ok(Some(arguments))
}

/// `<kind><number>\r\n`.
async fn read_header<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    kind: u8,
) -> std::io::Result<Option<usize>> {
    let mut line = Vec::new();
    if reader.take(32).read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    let number = line
        .strip_prefix(&[kind])
        .and_then(|rest| rest.strip_suffix(b"\r\n"))
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| invalid("header"))?;
    Ok(Some(number))
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_are_read_as_arrays_of_bulk_strings() {
        let mut input: &[u8] =
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$5\r\nt/?a=\r\n*1\r\n$4\r\nPING\r\n";
        let first = read_command(&mut input).await.unwrap().unwrap();
        assert_eq!(first, [b"AUTH".to_vec(), b"u".to_vec(), b"t/?a=".to_vec()]);
        let second = read_command(&mut input).await.unwrap().unwrap();
        assert_eq!(second, [b"PING".to_vec()]);
        assert!(read_command(&mut input).await.unwrap().is_none());
        for bad in [
            &b"PING\r\n"[..],
            b"*1\r\n$4\r\nPINGX\r\n",
            b"*0\r\n",
            b"*1\r\n$99999999\r\n",
        ] {
            let mut input = bad;
            assert!(read_command(&mut input).await.is_err(), "{bad:?}");
        }
    }
}
