-- After an escalation or a notice: `practice` and `network` are the including script's locals.
-- Nothing is learned from the practice's day, nor counted as a clean day of the network.
if practice ~= '' then
  if redis.call('HEXISTS', P .. 'st:' .. practice, 'day') == 1 then
    redis.call('HSET', P .. 'st:' .. practice, 'dirty', '1')
  end
  if network ~= '' then
    local nk = P .. 'net:' .. practice .. '|' .. network
    local ld = redis.call('HGET', nk, 'ld')
    if ld then redis.call('HSET', nk, 'dd', ld) end
  end
end
