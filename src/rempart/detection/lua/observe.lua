-- ARGV: the observation, then the rules (the same for every call), then the floors and subjects
-- (the same for every call of one actor): see RedisStore.observe. The answer is packed binary.
local P = ARGV[1]
local now = tonumber(ARGV[2])
local obs_id, hit, ben, probe, attempt = ARGV[3], ARGV[4] == '1', ARGV[5], ARGV[6], ARGV[7]
local insurer, device, network, how = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local day, default_off = tonumber(ARGV[12]), ARGV[13] == '1'
local slow_interval, lock_misses, lock_ms = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local standing_misses, standing_hits = tonumber(ARGV[17]), tonumber(ARGV[18])
local usual_min_total, usual_min_share, decay = tonumber(ARGV[19]), tonumber(ARGV[20]), tonumber(ARGV[21])
local growth, known_keep, clean_days_needed = tonumber(ARGV[22]), tonumber(ARGV[23]), tonumber(ARGV[24])
local credit, spread_practices, standing_share = tonumber(ARGV[25]), tonumber(ARGV[26]), tonumber(ARGV[27])
local floor5, floor1, floor_ins = tonumber(ARGV[28]), tonumber(ARGV[29]), tonumber(ARGV[30])
local floor_new, floor_unc, floor_unc7 = tonumber(ARGV[31]), tonumber(ARGV[32]), tonumber(ARGV[33])
local n = tonumber(ARGV[34])
local MIN, HOUR, DAY, WEEK = 60000, 3600000, 86400000, 604800000
-- Expiry (real time) only collects the keys of subjects gone quiet; windows are counted by score.
-- A window gets its expiry (KEEP: its span and TIDY, with room) when this subject first fills it
-- ('w' lists those that have one) and every TIDY while it is used, when its old members are
-- trimmed too: not on every write. Checks waiting for a claim are kept KEEP_PENDING (the longest
-- claim delay and a week), a practice's patients and networks KEEP_KNOWN.
local KEEP, KEEP_LONG, TIDY = 129600000, 7776000000, 21600000
local KEEP_PENDING = 3283200000
local KEEP_KNOWN = known_keep + DAY

-- Each subject's state is one hash, read once: its containment level, when it last missed, when it
-- was last tidied; the actor's devices and networks; the practice's usual hours and history.
-- Positions: 1 lvl, 2 until, 3 peak, 4 peak_at, 5 mlast, 6 gc, 7 w, 8 nlast, then by role:
-- A: 9 rej, 10 slow_last, 11 fresh, 12 llast, 13 nd, 14 nn, 15 this device, 16 this network, 17 slast
-- P: 9 day, 10 dirty, 11 c5, 12 c1, 13 c24, 14 cn, 15 cu, 16 b5, 17 b1, 18 b24, 19 bn, 20 bu, 21 t,
--    22 this hour of the week, 23 ne (an established network)
local subj, role, grace, sk, st, put, wl, wset, due = {}, {}, {}, {}, {}, {}, {}, {}, {}
local lv, top, gov, practice = {}, 0, 0, 0
for i = 1, n do
  local b = 34 + 3 * (i - 1)
  subj[i], role[i], grace[i] = ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3])
  sk[i] = P .. 'st:' .. subj[i]
  local h
  if role[i] == 'A' then
    h = redis.call('HMGET', sk[i], 'lvl', 'until', 'peak', 'peak_at', 'mlast', 'gc', 'w', 'nlast', 'rej',
      'slow_last', 'fresh', 'llast', 'nd', 'nn', 'd:' .. device, 'n:' .. network, 'slast')
  elseif role[i] == 'P' then
    practice = i
    h = redis.call('HMGET', sk[i], 'lvl', 'until', 'peak', 'peak_at', 'mlast', 'gc', 'w', 'nlast', 'day', 'dirty',
      'c5', 'c1', 'c24', 'cn', 'cu', 'b5', 'b1', 'b24', 'bn', 'bu', 't', 'h' .. how, 'ne')
  else
    h = redis.call('HMGET', sk[i], 'lvl', 'until', 'peak', 'peak_at', 'mlast', 'gc', 'w', 'nlast')
  end
  st[i], put[i], wl[i], wset[i] = h, {}, h[7] or '', false
  local gc = tonumber(h[6])
  due[i] = not gc or now - gc >= TIDY
  local l, u = tonumber(h[1]) or 0, tonumber(h[2]) or 0
  if l > 0 and (u == 0 or now < u) then lv[i] = l else lv[i] = 0 end
  if lv[i] > top then top, gov = lv[i], i end
end
local A = st[1]
local ks = tonumber(redis.call('GET', P .. 'ks') or '0')

-- The practice's view of this network: established once it carried traffic on enough clean days
-- (and, when the practice has another established network, enough of the practice's own patients);
-- "fresh" while it is not and the practice has one. Positions: 1 f (first seen), 2 cd (clean days),
-- 3 ld (last day of traffic), 4 dd (last dirty day), 5 e, 6 n (new), 7 r (returning), 8 m, 9 c.
local nk, N, fresh_net, cdays, established, has_est = nil, nil, false, 0, false, false
if practice > 0 and network ~= '' then
  nk = P .. 'net:' .. subj[practice] .. '|' .. network
  N = redis.call('HMGET', nk, 'f', 'cd', 'ld', 'dd', 'e', 'n', 'r', 'm', 'c')
  if N[3] and day - tonumber(N[3]) > math.floor(known_keep / DAY) then
    -- Not seen for as long as patients are remembered: a network like any other never seen.
    redis.call('DEL', nk)
    N = {false, false, false, false, false, false, false, false, false}
  end
  cdays = tonumber(N[2]) or 0
  if N[3] and tonumber(N[3]) ~= day and N[4] ~= N[3] then cdays = cdays + 1 end
  has_est = st[practice][23] == '1'
  established = N[5] == '1' or (cdays >= clean_days_needed and
    (not has_est or credit * (tonumber(N[7]) or 0) >= (tonumber(N[6]) or 0)))
  fresh_net = has_est and not established
end

local function push(i, field, value, field2, value2)
  local t = put[i]
  t[#t + 1], t[#t + 2] = field, value
  if field2 then t[#t + 1], t[#t + 2] = field2, value2 end
end
-- Times leave as the strings they came in, or are formatted once (numbers cost a conversion each).
local NOW, after = ARGV[2], {}
local function since(key, window)
  local bound = after[window]
  if not bound then
    bound = '(' .. (now - window)
    after[window] = bound
  end
  return redis.call('ZCOUNT', key, bound, '+inf')
end
-- A window this subject did not hold at its last tidy gets its expiry when first filled (unless
-- the tidy at the end of this call gives it one).
local function mark(i, letter, key)
  if not due[i] and not string.find(wl[i], letter, 1, true) then
    redis.call('PEXPIRE', key, (letter == 'p' or letter == 'n') and KEEP_PENDING or KEEP)
    wl[i], wset[i] = wl[i] .. letter, true
  end
end
local function save(i)
  local t = put[i]
  if wset[i] then t[#t + 1] = 'w'; t[#t + 1] = wl[i] end
  if #t > 0 then redis.call('HSET', sk[i], unpack(t)) end
end
-- A learned daily peak at the end of a day: it decays, and grows from a clean day only, by at most
-- ``growth`` (the first clean day sets it).
local function learned(b, cur, clean)
  if not clean then return b * decay end
  local grown = cur
  if b ~= 0 then grown = math.min(cur, b * growth) end
  return math.max(b * decay, grown)
end

local adm, retry = 0, 0  -- 0 admitted, 1 slowed, 2 stepped up, 3 suspended, 4 identity locked
if top >= 4 then
  adm = 3
elseif top == 3 then
  adm = 2
else
  -- The identity lock: this card and NIR missed here (this actor or practice) with other dates of
  -- birth (or birth ranks) within the lock period. Decided from the probe's history and the
  -- subject's standing only, before this attempt counts, never from whether this attempt matches.
  -- Only a subject that missed within the lock period can hold a lock ('mlast').
  if probe ~= '' then
    for i = 1, n do
      if (role[i] == 'A' or role[i] == 'P') and (tonumber(st[i][5]) or 0) > now - lock_ms then
        local tried = redis.call('ZRANGEBYSCORE', P .. 'pm:' .. subj[i] .. ':' .. probe, '(' .. (now - lock_ms),
          '+inf', 'WITHSCORES')
        local others, last, counted = 0, 0, {}
        for j = 1, #tried, 2 do
          local a = tried[j]
          local bar = string.find(a, '|', 1, true)  -- a practice's entries name the actor too
          if bar then a = string.sub(a, 1, bar - 1) end
          if a ~= attempt then
            if not counted[a] then
              counted[a], others = true, others + 1
            end
            last = math.max(last, tonumber(tried[j + 1]))
          end
        end
        if others > 0 then
          local locked = others >= lock_misses
          if not locked then
            -- One or two typos among answered checks are corrected; a subject without answered
            -- checks in the day, or with more misses in the hour, gets one date per card, and so
            -- does a network the practice has not established.
            local seen, mis = P .. 'seen:' .. subj[i], P .. 'mis:' .. subj[i]
            local recent = since(mis, HOUR)
            if fresh_net then
              locked = true
            elseif established then
              -- A busy counter's typos: many in the hour only when they are a large share of it.
              locked = recent > standing_misses and recent >= standing_share * since(seen, HOUR)
            else
              locked = recent > standing_misses or since(seen, DAY) - since(mis, DAY) < standing_hits
            end
          end
          if locked then
            adm, gov, retry = 4, 1, math.max(retry, last + lock_ms - now)
          end
        end
      end
    end
  end
  if adm == 0 and top == 2 then
    local last = tonumber(A[10]) or 0
    if now - last < slow_interval then
      adm, retry = 1, slow_interval - (now - last)
    else
      push(1, 'slow_last', NOW)
    end
  end
end

local fmt = '>' .. string.rep('i8', 16) .. string.rep(string.rep('i8', 17) .. 'ddddd', n)
if adm ~= 0 then
  local actor, rej = subj[1], 0
  local d1, misses, locked = 0, 0, 0
  if adm == 4 then
    -- Counted within the hour: a locked card now and then (a typo corrected) never adds up.
    local rk = P .. 'lockrej:' .. actor
    redis.call('ZADD', rk, now, obs_id)
    redis.call('ZREMRANGEBYSCORE', rk, '-inf', now - HOUR)
    redis.call('PEXPIRE', rk, KEEP)
    rej = since(rk, HOUR)
    -- A locked identity tried again: the actor's retried identities, misses and distinct identities
    -- within the hour (the engine's ladder for guessing); nothing else is counted for a refusal.
    local lk = P .. 'locked:' .. actor
    if redis.call('ZADD', lk, now, probe) == 1 then
      redis.call('ZREMRANGEBYSCORE', lk, '-inf', now - HOUR)
      redis.call('PEXPIRE', lk, KEEP)
    end
    locked = since(lk, HOUR)
    d1 = since(P .. 'seen:' .. actor, HOUR)
    misses = since(P .. 'mis:' .. actor, HOUR)
    redis.call('HSET', sk[1], 'llast', now)
    redis.call('PEXPIRE', sk[1], KEEP_LONG)
  else
    rej = redis.call('HINCRBY', sk[1], 'rej', 1)
    redis.call('PEXPIRE', sk[1], KEEP_LONG)
  end
  local out = {adm, retry, rej, gov, 0, 0, 0, 0, 0, ks, 0, 0, 0, 0, 0, 0}
  for i = 1, n do
    local row = {lv[i], tonumber(st[i][3]) or 0, tonumber(st[i][4]) or 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 0, 0, 0, 0, 0, 0}
    if i == 1 then row[5], row[7], row[13] = d1, misses, locked end
    for _, v in ipairs(row) do out[#out + 1] = v end
  end
  return struct.pack(fmt, unpack(out))
end

local off = default_off
if practice > 0 then
  local S = st[practice]
  local total, bucket = tonumber(S[21]) or 0, tonumber(S[22]) or 0
  if total >= usual_min_total then off = bucket < total * usual_min_share end
  push(practice, 'h' .. how, bucket + 1, 't', total + 1)
end

-- A device or network never seen for this actor; only a new network starts a "fresh" period (the
-- routes' device references may change with every session).
local newdev, newnet, fresh = 0, 0, tonumber(A[11]) or 0
if device ~= '' and not A[15] then
  local known = tonumber(A[13]) or 0
  if known > 0 then newdev = 1 end
  push(1, 'd:' .. device, 1, 'nd', known + 1)
end
if network ~= '' and not A[16] then
  local known = tonumber(A[14]) or 0
  if known > 0 then
    newnet, fresh = 1, now
    push(1, 'fresh', NOW)
  end
  push(1, 'n:' .. network, 1, 'nn', known + 1)
end

-- Is the beneficiary new to the practice (never checked there, or not within known_keep)?
local new, before = false, nil
if practice > 0 and hit then
  local kn = P .. 'kn:' .. subj[practice]
  before = tonumber(redis.call('ZSCORE', kn, ben))
  new = not before or before <= now - known_keep
  redis.call('ZADD', kn, now, ben)
  if due[practice] then
    redis.call('ZREMRANGEBYSCORE', kn, '-inf', now - known_keep)
    redis.call('PEXPIRE', kn, KEEP_KNOWN)
  elseif not string.find(wl[practice], 'k', 1, true) then
    redis.call('PEXPIRE', kn, KEEP_KNOWN)
    wl[practice], wset[practice] = wl[practice] .. 'k', true
  end
end

-- What this network carried for the practice, until it is established.
local nnew, nret, nmis, nchk = 0, 0, 0, 0
if nk then
  nnew, nret, nmis, nchk = tonumber(N[6]) or 0, tonumber(N[7]) or 0, tonumber(N[8]) or 0, tonumber(N[9]) or 0
  if N[5] == '1' then
    if tonumber(N[3]) ~= day then
      redis.call('HSET', nk, 'ld', day)
      redis.call('PEXPIRE', nk, KEEP_KNOWN)
    end
  else
    local first = tonumber(N[1]) or now
    if established then
      redis.call('HSET', nk, 'f', first, 'cd', cdays, 'ld', day, 'e', '1')
      push(practice, 'ne', '1')
    else
      nchk = nchk + 1
      if not hit then
        nmis = nmis + 1
      elseif new then
        nnew = nnew + 1
      elseif before and before < first then
        nret = nret + 1
      end
      redis.call('HSET', nk, 'f', first, 'cd', cdays, 'ld', day, 'n', nnew, 'r', nret, 'm', nmis, 'c', nchk)
    end
    redis.call('PEXPIRE', nk, KEEP_KNOWN)
  end
end

-- Practices (or, without one, accounts and clients) where this card and NIR was tried in the week.
local spread = false
if probe ~= '' then
  local pk = P .. 'prp:' .. probe
  if redis.call('ZADD', pk, now, practice > 0 and subj[practice] or subj[1]) == 1 then
    -- Another practice: the old ones go, and the key lives a week after the last one came.
    redis.call('ZREMRANGEBYSCORE', pk, '-inf', now - WEEK)
    redis.call('PEXPIRE', pk, WEEK + HOUR)
  end
  spread = since(pk, WEEK) >= spread_practices
end

local out = {adm, 0, 0, 0, newdev, newnet, fresh, off and 1 or 0, 0, ks, new and 1 or 0, fresh_net and 1 or 0,
  nnew, nret, nmis, nchk}
for i = 1, n do
  local s, r, S = subj[i], role[i], st[i]
  local seen, mis = P .. 'seen:' .. s, P .. 'mis:' .. s
  redis.call('ZADD', seen, NOW, ben)
  mark(i, 's', seen)
  -- Distinct identities that missed (the same typo sent twice is one miss), kept a day.
  local misses, misses24 = 0, 0
  local mlast = tonumber(S[5]) or 0
  if not hit then
    redis.call('ZADD', mis, NOW, ben)
    mark(i, 'm', mis)
    push(i, 'mlast', NOW)
    misses = since(mis, HOUR)
    misses24 = since(mis, DAY)
  else
    if mlast > now - HOUR then misses = since(mis, HOUR) end
    if mlast > now - DAY then misses24 = since(mis, DAY) end
  end
  -- Narrower windows only when the wider one reaches their floor (or misses need the hour).
  local d24 = since(seen, DAY)
  local d1 = d24
  if d24 >= floor1 or misses > 0 then d1 = since(seen, HOUR) end
  local d5 = d1
  if d1 >= floor5 then d5 = since(seen, 5 * MIN) end
  -- Beneficiaries new to the practice, within the day.
  local nw, new24 = P .. 'new:' .. s, 0
  if new then
    redis.call('ZADD', nw, NOW, ben)
    mark(i, 'n', nw)
    push(i, 'nlast', NOW)
  end
  if d24 >= floor_new and (new or (tonumber(S[8]) or 0) > now - DAY) then new24 = since(nw, DAY) end
  local unc, unc7, newm, newm7, ins, locked, offc, spr = 0, 0, 0, 0, 0, 0, 0, 0
  if r == 'A' or r == 'P' then
    local pend, ik = P .. 'pend:' .. s, P .. 'ins:' .. s
    if new then
      -- Waits for a claim: a quote or a prior approval is not care.
      redis.call('ZADD', pend, NOW, ben)
      mark(i, 'p', pend)
    end
    if hit and insurer ~= '' then
      redis.call('ZADD', ik, NOW, insurer)
      mark(i, 'i', ik)
    end
    -- Only a subject that had a new beneficiary within the claim delay and a week has any waiting.
    if (tonumber(S[8]) or 0) > now - grace[i] - WEEK then
      local matured = after[-grace[i]]
      if not matured then
        matured = tostring(now - grace[i])
        after[-grace[i]] = matured
      end
      local day_ago, week_ago = '(' .. (now - grace[i] - DAY), '(' .. (now - grace[i] - WEEK)
      unc = redis.call('ZCOUNT', pend, day_ago, matured)
      unc7 = redis.call('ZCOUNT', pend, week_ago, matured)
      if unc >= floor_unc then newm = redis.call('ZCOUNT', nw, day_ago, matured) end
      if unc7 >= floor_unc7 then newm7 = redis.call('ZCOUNT', nw, week_ago, matured) end
    end
    if d24 >= floor_ins then ins = since(ik, DAY) end
    if not hit and probe ~= '' and attempt ~= '' then
      -- The attempt that missed, under its card and NIR; and in an index, for a lift to clear it.
      local member, entry = attempt, probe
      if r == 'P' then
        member = attempt .. '|' .. subj[1]
      elseif practice > 0 then
        entry = probe .. '|' .. subj[practice]
      end
      local pmk, index = P .. 'pm:' .. s .. ':' .. probe, P .. 'pmi:' .. s
      redis.call('ZADD', pmk, now, member)
      redis.call('PEXPIRE', pmk, lock_ms + HOUR)
      redis.call('ZADD', index, now, entry)
      redis.call('ZREMRANGEBYSCORE', index, '-inf', now - lock_ms)
      redis.call('PEXPIRE', index, lock_ms + HOUR)
    end
  end
  if r == 'A' then
    if (tonumber(S[12]) or 0) > now - HOUR then locked = since(P .. 'locked:' .. s, HOUR) end
    local sp = P .. 'spr:' .. s
    if spread then
      redis.call('ZADD', sp, NOW, probe)
      mark(i, 'l', sp)
      push(i, 'slast', NOW)
      spr = since(sp, DAY)
    elseif (tonumber(S[17]) or 0) > now - DAY then
      spr = since(sp, DAY)
    end
  end
  if off then
    local ok = P .. 'off:' .. s
    redis.call('ZADD', ok, NOW, obs_id)
    mark(i, 'o', ok)
    offc = since(ok, HOUR)
  end
  local b5, b1, b24, bn, bu = 0, 0, 0, 0, 0
  if r == 'P' then
    local hday = tonumber(S[9]) or day
    local c5, c1, c24 = tonumber(S[11]) or 0, tonumber(S[12]) or 0, tonumber(S[13]) or 0
    local cn, cu = tonumber(S[14]) or 0, tonumber(S[15]) or 0
    b5, b1, b24 = tonumber(S[16]) or 0, tonumber(S[17]) or 0, tonumber(S[18]) or 0
    bn, bu = tonumber(S[19]) or 0, tonumber(S[20]) or 0
    local rolled = hday ~= day or not S[9]
    if hday ~= day then
      local clean = S[10] ~= '1'
      b5, b1, b24 = learned(b5, c5, clean), learned(b1, c1, clean), learned(b24, c24, clean)
      bn, bu = learned(bn, cn, clean), learned(bu, cu, clean)
      c5, c1, c24, cn, cu = 0, 0, 0, 0, 0
    end
    if rolled or d5 > c5 or d1 > c1 or d24 > c24 or new24 > cn or unc > cu then
      c5, c1, c24 = math.max(c5, d5), math.max(c1, d1), math.max(c24, d24)
      cn, cu = math.max(cn, new24), math.max(cu, unc)
      push(i, 'day', day, 'dirty', (hday ~= day) and '0' or (S[10] or '0'))
      push(i, 'c5', c5, 'c1', c1)
      push(i, 'c24', c24, 'cn', cn)
      push(i, 'cu', cu, 'b5', tostring(b5))
      push(i, 'b1', tostring(b1), 'b24', tostring(b24))
      push(i, 'bn', tostring(bn), 'bu', tostring(bu))
    end
  end
  local row = {lv[i], tonumber(S[3]) or 0, tonumber(S[4]) or 0, d5, d1, d24, misses, unc, unc7, newm, newm7, ins,
    locked, offc, new24, misses24, spr, b5, b1, b24, bn, bu}
  for _, v in ipairs(row) do out[#out + 1] = v end
end

if hit then
  if practice > 0 and new then
    local pby = P .. 'pby:' .. subj[practice]
    redis.call('HSET', pby, ben, subj[1])
    mark(practice, 'b', pby)
  end
  local bk = P .. 'benp:' .. ben
  if redis.call('ZADD', bk, NOW, practice > 0 and subj[practice] or subj[1]) == 1 then
    redis.call('PEXPIRE', bk, KEEP)
  end
  out[9] = since(bk, DAY)
end
-- Each subject's state in one write; every TIDY, its windows trimmed and their expiry renewed.
for i = 1, n do
  local tidy = due[i]
  if tidy then
    local s, r, kept = subj[i], role[i], ''
    local windows = {{'s', 'seen:'}, {'m', 'mis:'}, {'o', 'off:', HOUR}, {'n', 'new:', KEEP_PENDING, KEEP_PENDING}}
    if r == 'A' or r == 'P' then
      windows[#windows + 1] = {'p', 'pend:', KEEP_PENDING, KEEP_PENDING}
      windows[#windows + 1] = {'i', 'ins:'}
    end
    if r == 'A' then windows[#windows + 1] = {'l', 'spr:'} end
    for _, wd in ipairs(windows) do
      local key = P .. wd[2] .. s
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - (wd[3] or DAY))
      if redis.call('PEXPIRE', key, wd[4] or KEEP) == 1 then kept = kept .. wd[1] end
    end
    if r == 'P' then
      -- Who checked which new beneficiary here: an entry only serves to clear its actor's pending
      -- check on a claim, so it goes once that check has left the actor's pending window (or was
      -- claimed or forgotten): a claim would clear nothing counted.
      local pby, gone, by_actor = P .. 'pby:' .. s, {}, {}
      local entries = redis.call('HGETALL', pby)
      for j = 1, #entries, 2 do
        local bens = by_actor[entries[j + 1]]
        if not bens then
          bens = {}
          by_actor[entries[j + 1]] = bens
        end
        bens[#bens + 1] = entries[j]
      end
      for a, bens in pairs(by_actor) do
        for c = 1, #bens, 1000 do
          local chunk = {unpack(bens, c, math.min(c + 999, #bens))}
          local scores = redis.call('ZMSCORE', P .. 'pend:' .. a, unpack(chunk))
          for j = 1, #chunk do
            if not scores[j] or tonumber(scores[j]) <= now - KEEP_PENDING then gone[#gone + 1] = chunk[j] end
          end
        end
      end
      for c = 1, #gone, 1000 do
        redis.call('HDEL', pby, unpack(gone, c, math.min(c + 999, #gone)))
      end
      if redis.call('PEXPIRE', pby, KEEP_PENDING) == 1 then kept = kept .. 'b' end
      if practice > 0 and hit then kept = kept .. 'k' end
    end
    wl[i], wset[i] = kept, true
    push(i, 'gc', NOW)
  end
  save(i)
  if tidy then redis.call('PEXPIRE', sk[i], KEEP_LONG) end
end
return struct.pack(fmt, unpack(out))
