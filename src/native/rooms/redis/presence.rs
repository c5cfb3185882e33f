//! Presence and counters in Redis: per room, a hash of each instance's
//! member count and a sorted set of when each instance's count runs out,
//! both timed by Redis's clock so that instances need no common one.

use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::Script;

use super::unreachable;
use crate::error::Error;

/// The start of both scripts: Redis's clock as `now` (milliseconds), and
/// the counts that ended by then forgotten. KEYS: the room's counts and
/// their ends.
macro_rules! forget_ended {
    () => {
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE')
for _, instance in ipairs(gone) do
  redis.call('HDEL', KEYS[1], instance)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
"
    };
}

/// Sets one instance's member count in a room, for a time, and forgets the
/// counts that ran out.
///
/// KEYS: the room's counts (a hash: instance → members) and their ends (a
/// sorted set: instance by the millisecond its count runs out). ARGV: the
/// instance, its members (0 withdraws it), the time to live in
/// milliseconds.
///
/// Both keys expire with the last count that runs out, so that a room
/// whose instances all died leaves nothing behind.
const SET_SCRIPT: &str = concat!(
    forget_ended!(),
    r"if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local last = redis.call('ZRANGE', KEYS[2], 0, 0, 'REV', 'WITHSCORES')
if #last == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('PEXPIREAT', KEYS[1], last[2])
  redis.call('PEXPIREAT', KEYS[2], last[2])
end
return 0
"
);

/// The sum of the counts of a room that have not run out (forgetting
/// those that have). KEYS: as for [`SET_SCRIPT`].
const COUNT_SCRIPT: &str = concat!(
    forget_ended!(),
    r"local total = 0
for _, members in ipairs(redis.call('HVALS', KEYS[1])) do
  total = total + tonumber(members)
end
return total
"
);

/// The scripts, loaded once per backplane.
pub(super) struct Scripts {
    set: Script,
    count: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            set: Script::new(SET_SCRIPT),
            count: Script::new(COUNT_SCRIPT),
        }
    }
}

/// A room's presence keys: the counts and their ends.
pub(super) struct Keys {
    pub(super) counts: String,
    pub(super) ends: String,
}

pub(super) async fn set(
    scripts: &Scripts,
    mut manager: ConnectionManager,
    keys: Keys,
    instance: &str,
    members: usize,
    ttl: Duration,
) -> Result<(), Error> {
    let ttl = ttl.as_millis().max(1);
    scripts
        .set
        .key(&keys.counts)
        .key(&keys.ends)
        .arg(instance)
        .arg(members)
        .arg(ttl.to_string())
        .invoke_async::<i64>(&mut manager)
        .await
        .map_err(|e| unreachable(&e))?;
    Ok(())
}

pub(super) async fn count(
    scripts: &Scripts,
    mut manager: ConnectionManager,
    keys: Keys,
) -> Result<usize, Error> {
    let total: i64 = scripts
        .count
        .key(&keys.counts)
        .key(&keys.ends)
        .invoke_async(&mut manager)
        .await
        .map_err(|e| unreachable(&e))?;
    Ok(usize::try_from(total).unwrap_or(0))
}

/// `INCR` counts from 1; the counters of the [`Backplane`] contract from 0.
///
/// [`Backplane`]: crate::rooms::Backplane
pub(super) async fn next_number(mut manager: ConnectionManager, key: String) -> Result<u64, Error> {
    let value: u64 = ::redis::cmd("INCR")
        .arg(&key)
        .query_async(&mut manager)
        .await
        .map_err(|e| unreachable(&e))?;
    Ok(value.saturating_sub(1))
}
