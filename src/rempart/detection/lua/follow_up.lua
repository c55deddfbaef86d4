local P, practice, ben = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZREM', P .. 'pend:' .. practice, ben)
local actor = redis.call('HGET', P .. 'pby:' .. practice, ben)
if actor then
  redis.call('ZREM', P .. 'pend:' .. actor, ben)
  redis.call('HDEL', P .. 'pby:' .. practice, ben)
end
return 1
