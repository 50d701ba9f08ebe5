import { LuaScript } from '../cluster/redis-client.js';

/**
 * The store's multi-key changes, each one Lua script so Redis applies it atomically.
 * Key names in comments refer to redis-keys.ts. Scripts never re-encode JSON (cjson would turn
 * `[]` into `{}`): records are split into fields so each change is a plain field write.
 */

/** Runs f over a list in chunks (Lua's unpack has a stack limit). */
const CHUNKED = `
local function chunked(cmd, key, list)
  for i = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
  end
end
`;

// KEYS: apps, apikeys, appkeys   ARGV: appId, json, apiKeyHash
export const PUT_APP = new LuaScript(`
local old = redis.call('HGET', KEYS[3], ARGV[1])
if old and old ~= ARGV[3] and redis.call('HGET', KEYS[2], old) == ARGV[1] then
  redis.call('HDEL', KEYS[2], old)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
`);

// KEYS: apps, apikeys   ARGV: apiKeyHash
export const APP_BY_KEY = new LuaScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[1], id)
`);

// KEYS: apps, apikeys, appkeys   ARGV: appId
export const DELETE_APP = new LuaScript(`
local kh = redis.call('HGET', KEYS[3], ARGV[1])
if kh and redis.call('HGET', KEYS[2], kh) == ARGV[1] then redis.call('HDEL', KEYS[2], kh) end
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
`);

// KEYS: users, user-order, user-seq   ARGV: userId, json
export const PUT_USER = new LuaScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
end
return 1
`);

// KEYS: users, user-order   ARGV: skip, limit   → {total, {json…}}
export const LIST_USERS = new LuaScript(`
local total = redis.call('ZCARD', KEYS[2])
local skip, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
if limit <= 0 then return {total, {}} end
local ids = redis.call('ZRANGE', KEYS[2], skip, skip + limit - 1)
if #ids == 0 then return {total, {}} end
return {total, redis.call('HMGET', KEYS[1], unpack(ids))}
`);

// KEYS: users, user-order, tokens   ARGV: base, userId
export const DELETE_USER = new LuaScript(`
local mine = ARGV[1] .. 'user-tokens:' .. ARGV[2]
local hashes = redis.call('SMEMBERS', mine)
for _, h in ipairs(hashes) do redis.call('HDEL', KEYS[3], h) end
redis.call('DEL', mine, ARGV[1] .. 'prefs:' .. ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return redis.call('HDEL', KEYS[1], ARGV[2])
`);

// KEYS: tokens   ARGV: base, hash, json, userId   (moves the hash between owners' indexes)
export const PUT_TOKEN = new LuaScript(`
local old = redis.call('HGET', KEYS[1], ARGV[2])
if old then
  local owner = cjson.decode(old).userId
  if owner ~= ARGV[4] then redis.call('SREM', ARGV[1] .. 'user-tokens:' .. owner, ARGV[2]) end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', ARGV[1] .. 'user-tokens:' .. ARGV[4], ARGV[2])
return 1
`);

// KEYS: tokens, user-tokens:<u>   ARGV: one ('1' = only ARGV[2]), hash   → {json…} of what went
export const DELETE_TOKENS = new LuaScript(`
local hashes
if ARGV[1] == '1' then
  if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return {} end
  hashes = {ARGV[2]}
else
  hashes = redis.call('SMEMBERS', KEYS[2])
end
if #hashes == 0 then return {} end
local gone = redis.call('HMGET', KEYS[1], unpack(hashes))
redis.call('HDEL', KEYS[1], unpack(hashes))
redis.call('SREM', KEYS[2], unpack(hashes))
return gone
`);

// KEYS: room   ARGV: base, roomId, nFields, (field, value)…, nMembers, member…
export const CREATE_ROOM = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('HSET', KEYS[1], 'v', 1, 'seq', 0)
redis.call('INCR', ARGV[1] .. 'room-count')
local n = tonumber(ARGV[i])
for j = i + 1, i + n do redis.call('SADD', ARGV[1] .. 'user-rooms:' .. ARGV[j], ARGV[2]) end
return 1
`);

// Compare-and-set write of a room read at version ARGV[3].
// KEYS: room   ARGV: base, roomId, version, nSet, (f, v)…, nDel, f…, nAdded, u…, nRemoved, u…
export const UPDATE_ROOM = new LuaScript(`
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[3] then return 0 end
local i = 4
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HDEL', KEYS[1], ARGV[i]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('SADD', ARGV[1] .. 'user-rooms:' .. ARGV[i], ARGV[2]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('SREM', ARGV[1] .. 'user-rooms:' .. ARGV[i], ARGV[2]); i = i + 1 end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
`);

// KEYS: room, messages, history   ARGV: base, roomId
export const DELETE_ROOM = new LuaScript(`${CHUNKED}
local doc = redis.call('HGET', KEYS[1], 'doc')
if not doc then return 0 end
local members = cjson.decode(doc).members
if type(members) == 'table' then
  for _, m in ipairs(members) do redis.call('SREM', ARGV[1] .. 'user-rooms:' .. m, ARGV[2]) end
end
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
chunked('HDEL', KEYS[2], ids)
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('DECR', ARGV[1] .. 'room-count')
return 1
`);

// KEYS: room   ARGV: userId, messageId → 1 when the user is a member
export const SET_LAST_READ = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], 'ms:' .. ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'lr:' .. ARGV[1], ARGV[2])
return 1
`);

// KEYS: room, messages, history   ARGV: id, json, createdAt, hasSender, sender
export const ADD_MESSAGE = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], 'doc') == 0 then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('HSET', KEYS[1], 'last', ARGV[1], 'at', ARGV[3])
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], 'ms:' .. ARGV[5]) == 1 then
  redis.call('HSET', KEYS[1], 'lr:' .. ARGV[5], ARGV[1])
end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
`);

// KEYS: messages, history   ARGV: id, json
export const REPLACE_MESSAGE = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

// KEYS: history, messages   ARGV: older ('1'|'0'), hasAnchor, anchor, includeAnchor, limit
// → nil when the anchor is not in the room, else the page's JSON values in page order.
export const LIST_MESSAGES = new LuaScript(`
local n = redis.call('ZCARD', KEYS[1])
local limit = math.max(0, tonumber(ARGV[5]))
local rank = nil
if ARGV[2] == '1' then
  rank = redis.call('ZRANK', KEYS[1], ARGV[3])
  if not rank then return false end
end
local ids
if ARGV[1] == '1' then
  local e = n
  if rank then e = (ARGV[4] == '1') and (rank + 1) or rank end
  local s = math.max(0, e - limit)
  if e - s <= 0 then return {} end
  ids = redis.call('ZREVRANGE', KEYS[1], n - e, n - s - 1)
else
  local s = 0
  if rank then s = (ARGV[4] == '1') and rank or (rank + 1) end
  if limit == 0 or s >= n then return {} end
  ids = redis.call('ZRANGE', KEYS[1], s, s + limit - 1)
end
if #ids == 0 then return {} end
local out = {}
for i = 1, #ids, 1000 do
  local part = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #ids - i + 1 do
    if j > 1000 then break end
    out[#out + 1] = part[j] or ''
  end
end
return out
`);

// KEYS: history   ARGV: hasId, id
export const COUNT_AFTER = new LuaScript(`
local n = redis.call('ZCARD', KEYS[1])
if ARGV[1] == '1' then
  local r = redis.call('ZRANK', KEYS[1], ARGV[2])
  if r then return n - r - 1 end
end
return n
`);

// KEYS: room, messages, history   ARGV: id
export const DELETE_MESSAGE = new LuaScript(`
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'doc') == 1 then
  if redis.call('HGET', KEYS[1], 'last') == ARGV[1] then
    local top = redis.call('ZRANGE', KEYS[3], -1, -1)
    if top[1] then redis.call('HSET', KEYS[1], 'last', top[1]) else redis.call('HDEL', KEYS[1], 'last') end
  end
  redis.call('HINCRBY', KEYS[1], 'v', 1)
end
return 1
`);

// KEYS: room, messages, history   → how many went
export const CLEAR_MESSAGES = new LuaScript(`${CHUNKED}
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
chunked('HDEL', KEYS[2], ids)
redis.call('DEL', KEYS[3])
if redis.call('HEXISTS', KEYS[1], 'doc') == 1 then
  redis.call('HDEL', KEYS[1], 'last')
  redis.call('HINCRBY', KEYS[1], 'v', 1)
end
return #ids
`);

// KEYS: files hash, the file's room set   ARGV: file id, room id
export const SHARE_FILE = new LuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
return 1
`);

// KEYS: the room's invitations hash   ARGV: the app key base, room id, invitees (none = all)
// Removes them and their invited:<u> entries; returns the removed records.
export const DELETE_INVITATIONS = new LuaScript(`
local invitees = {}
if #ARGV > 2 then
  for i = 3, #ARGV do invitees[#invitees + 1] = ARGV[i] end
else
  invitees = redis.call('HKEYS', KEYS[1])
end
local gone = {}
for _, invitee in ipairs(invitees) do
  local value = redis.call('HGET', KEYS[1], invitee)
  if value then
    redis.call('HDEL', KEYS[1], invitee)
    redis.call('SREM', ARGV[1] .. 'invited:' .. invitee, ARGV[2])
    gone[#gone + 1] = value
  end
end
return gone
`);
