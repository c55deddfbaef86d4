local P, subject = ARGV[1], ARGV[2]
local step, until_ms, now, practice = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local network = ARGV[7]
local k = P .. 'st:' .. subject
local h = redis.call('HMGET', k, 'lvl', 'until', 'peak', 'peak_at')
local l, u = tonumber(h[1]) or 0, tonumber(h[2]) or 0
local before = 0
if l > 0 and (u == 0 or now < u) then before = l end
if step <= before then return {before, before} end
local peak, peak_at = tonumber(h[3]) or 0, tonumber(h[4]) or 0
if peak_at <= now - 86400000 then peak = 0 end
redis.call('HSET', k, 'lvl', step, 'until', until_ms, 'rej', 0, 'peak', math.max(peak, step), 'peak_at', now)
if step == 2 then redis.call('HSET', k, 'slow_last', now) end
redis.call('PEXPIRE', k, 7776000000)
-- include: spoil_day.lua
return {before, step}
