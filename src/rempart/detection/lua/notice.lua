-- A notice on a subject today: remember the day (the last seven are kept), spoil the practice's day.
local P, subject, day, practice, network = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local repeated = ARGV[6] == '1'  -- sent as an integer
local k = P .. 'st:' .. subject
local kept = {}
for d in string.gmatch(redis.call('HGET', k, 'nds') or '', '[^,]+') do
  local v = tonumber(d)
  if v > day - 7 and (v ~= day or not repeated) then
    kept[#kept + 1] = d
  end
end
if repeated then kept[#kept + 1] = tostring(day) end
redis.call('HSET', k, 'nds', table.concat(kept, ','))
redis.call('PEXPIRE', k, 7776000000)
-- include: spoil_day.lua
return #kept
