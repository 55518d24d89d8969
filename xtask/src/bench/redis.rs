//! A minimal blocking Redis client for what the harness reads: `INFO` sections, `DBSIZE`,
//! `SCAN` and `TTL`. One connection, opened before a measurement and kept, so that it counts
//! as exactly one client in `INFO clients`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Connect, read and write timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The commands this client sends; `INFO commandstats` deltas leave them out.
pub(crate) const HARNESS_COMMANDS: [&str; 4] = ["info", "dbsize", "scan", "ttl"];

/// One connection to a Redis server.
#[derive(Debug)]
pub(crate) struct Redis {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

// === impl Redis ===

impl Redis {
    pub(crate) fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .with_context(|| format!("cannot connect to Redis at {addr}"))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Self {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply; an error reply is an error.
    pub(crate) fn command(&mut self, args: &[&str]) -> Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&request)
            .with_context(|| format!("cannot send {} to Redis at {}", args[0], self.addr))?;
        self.read_reply()
            .with_context(|| format!("{} on Redis at {}", args.join(" "), self.addr))
    }

    /// `INFO section` as `field → value`.
    pub(crate) fn info(&mut self, section: &str) -> Result<BTreeMap<String, String>> {
        let text = match self.command(&["INFO", section])? {
            Reply::Bulk(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            other => bail!("INFO {section}: unexpected reply {other:?}"),
        };
        Ok(text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
            .collect())
    }

    /// A field of `INFO section` as a number.
    pub(crate) fn info_number(&mut self, section: &str, field: &str) -> Result<u64> {
        let info = self.info(section)?;
        info.get(field)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("INFO {section} has no number {field}"))
    }

    /// The number of commands Redis executed so far (including those scripts ran), leaving out
    /// [`HARNESS_COMMANDS`].
    pub(crate) fn commands_executed(&mut self) -> Result<u64> {
        Ok(self
            .info("commandstats")?
            .iter()
            .filter_map(|(key, value)| {
                let command = key.strip_prefix("cmdstat_")?;
                if HARNESS_COMMANDS.contains(&command) {
                    return None;
                }
                // calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0
                value
                    .split(',')
                    .find_map(|field| field.strip_prefix("calls="))
                    .and_then(|calls| calls.parse::<u64>().ok())
            })
            .sum())
    }

    pub(crate) fn dbsize(&mut self) -> Result<u64> {
        match self.command(&["DBSIZE"])? {
            Reply::Integer(n) => u64::try_from(n).context("negative DBSIZE"),
            other => bail!("DBSIZE: unexpected reply {other:?}"),
        }
    }

    /// Every key (at most `limit`), by `SCAN`.
    pub(crate) fn keys(&mut self, limit: usize) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = "0".to_owned();
        loop {
            let reply = self.command(&["SCAN", &cursor, "COUNT", "1000"])?;
            let Reply::Array(Some(parts)) = reply else {
                bail!("SCAN: unexpected reply {reply:?}");
            };
            let [Reply::Bulk(Some(next)), Reply::Array(Some(batch))] = parts.as_slice() else {
                bail!("SCAN: unexpected reply {parts:?}");
            };
            for key in batch {
                if let Reply::Bulk(Some(key)) = key {
                    keys.push(String::from_utf8_lossy(key).into_owned());
                }
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" || keys.len() >= limit {
                keys.truncate(limit);
                return Ok(keys);
            }
        }
    }

    /// `TTL key`: seconds left, `None` for a key without expiry (or gone).
    pub(crate) fn ttl(&mut self, key: &str) -> Result<Option<u64>> {
        match self.command(&["TTL", key])? {
            Reply::Integer(seconds) => Ok(u64::try_from(seconds).ok()),
            other => bail!("TTL: unexpected reply {other:?}"),
        }
    }

    fn read_reply(&mut self) -> Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at_checked(1).context("empty reply line")?;
        match kind {
            "+" => Ok(Reply::Simple(rest.to_owned())),
            "-" => bail!("Redis error: {rest}"),
            ":" => Ok(Reply::Integer(rest.parse().context("bad integer reply")?)),
            "$" => {
                let len: i64 = rest.parse().context("bad bulk length")?;
                let Ok(len) = usize::try_from(len) else {
                    return Ok(Reply::Bulk(None));
                };
                let mut bytes = vec![0; len + 2];
                self.reader.read_exact(&mut bytes)?;
                bytes.truncate(len);
                Ok(Reply::Bulk(Some(bytes)))
            }
            "*" => {
                let len: i64 = rest.parse().context("bad array length")?;
                let Ok(len) = usize::try_from(len) else {
                    return Ok(Reply::Array(None));
                };
                let items = (0..len)
                    .map(|_| self.read_reply())
                    .collect::<Result<Vec<_>>>()?;
                Ok(Reply::Array(Some(items)))
            }
            _ => bail!("unknown reply type in {line:?}"),
        }
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            bail!("Redis closed the connection");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// A key's shape, for listing leaked keys: every id-like run of letters, digits, `-` and `_`
/// (16 characters or more, or 8 or more with at least 3 digits) becomes `*`.
pub(crate) fn key_pattern(key: &str) -> String {
    let mut pattern = String::with_capacity(key.len());
    let mut run = String::new();
    let flush = |run: &mut String, pattern: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if run.len() >= 16 || (run.len() >= 8 && digits >= 3) {
            pattern.push('*');
        } else {
            pattern.push_str(run);
        }
        run.clear();
    };
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run.push(c);
        } else {
            flush(&mut run, &mut pattern);
            pattern.push(c);
        }
    }
    flush(&mut run, &mut pattern);
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns_hide_ids() {
        assert_eq!(
            key_pattern("shoal:{s:3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6}:log:1"),
            "shoal:{s:*}:log:1"
        );
        assert_eq!(key_pattern("shoal:node:replica-0"), "shoal:node:replica-0");
        assert_eq!(key_pattern("shoal:inbox:node-a1b2c3d4"), "shoal:inbox:*");
    }
}
