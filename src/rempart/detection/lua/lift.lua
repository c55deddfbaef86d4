local P, s, forget = ARGV[1], ARGV[2], ARGV[3] == '1'
local k = P .. 'st:' .. s
redis.call('HDEL', k, 'lvl', 'until', 'rej', 'peak', 'peak_at', 'slow_last')
-- The identity locks this subject's misses set: its own and, for an account or client, its
-- practice's entries naming it.
local index = P .. 'pmi:' .. s
local suffix = '|' .. s
for _, entry in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  local bar = string.find(entry, '|', 1, true)
  local probe = entry
  if bar then probe = string.sub(entry, 1, bar - 1) end
  redis.call('DEL', P .. 'pm:' .. s .. ':' .. probe)
  if bar then
    local pk = P .. 'pm:' .. string.sub(entry, bar + 1) .. ':' .. probe
    for _, m in ipairs(redis.call('ZRANGE', pk, 0, -1)) do
      if string.sub(m, -#suffix) == suffix then redis.call('ZREM', pk, m) end
    end
  end
end
redis.call('DEL', index)
if forget then
  for _, w in ipairs({'seen:', 'mis:', 'pend:', 'ins:', 'off:', 'locked:', 'lockrej:', 'new:', 'spr:'}) do
    redis.call('DEL', P .. w .. s)
  end
  redis.call('HDEL', k, 'mlast', 'llast', 'gc', 'w', 'nlast', 'slast', 'nds')
end
return 1
