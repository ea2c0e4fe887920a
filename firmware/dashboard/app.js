// corridor dashboard: one status document per second over Server-Sent Events; everything
// (throughput, route, history) is derived client-side from it. No framework, no network
// access beyond this appliance. All data goes into the DOM through textContent (never HTML).
'use strict';
(function () {
  var HISTORY_S = 600, ROUTE_MAX = 3000;
  var COLORS = ['#0047ff', '#d40000', '#008a00', '#a000a0', '#c06000', '#007c8a', '#555', '#b8008a'];
  var prev = {}, hist = [], route = [], linkColor = {}, csrf = null, lastDoc = null, lastSeen = 0;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function color(name) {
    if (!linkColor[name]) linkColor[name] = COLORS[Object.keys(linkColor).length % COLORS.length];
    return linkColor[name];
  }
  function rate(bps) {
    if (bps === null || bps === undefined || !isFinite(bps)) return '–';
    if (bps >= 1e6) return (bps / 1e6).toFixed(1) + ' Mbit/s';
    if (bps >= 1e3) return (bps / 1e3).toFixed(0) + ' kbit/s';
    return bps.toFixed(0) + ' bit/s';
  }
  function dur(s) {
    if (s === null || !isFinite(s)) return '–';
    if (s < 90) return Math.round(s) + ' s';
    return Math.round(s / 60) + ' min';
  }
  function dist(m) { return m === null ? '–' : m >= 1000 ? (m / 1000).toFixed(1) + ' km' : Math.round(m) + ' m'; }
  function bars(rsrp, rssi) {
    var v = rsrp !== null && rsrp !== undefined ? rsrp : (rssi !== null && rssi !== undefined ? rssi + 20 : null);
    var n = v === null ? 0 : v >= -85 ? 4 : v >= -95 ? 3 : v >= -105 ? 2 : v >= -115 ? 1 : 0;
    var b = el('span', 'bars');
    b.setAttribute('aria-label', n + ' of 4 bars');
    for (var i = 0; i < 4; i++) b.appendChild(el('i', i < n ? 'on' : ''));
    return b;
  }
  var STATE_CLASS = { up: 'ok', draining: 'warn', 'disabled-predicted': 'warn', disabled: 'bad', down: 'bad', resetting: 'warn' };

  function throughput(doc, now) {
    var sample = { t: now, links: {} };
    doc.links.forEach(function (l) {
      var t = l.tunnel, p = prev[l.name];
      var cur = t ? { tx: t.tx_bytes, rx: t.rx_bytes, t: now } : null;
      l._up = l._down = null;
      if (cur && p && now > p.t && cur.tx >= p.tx && cur.rx >= p.rx) {
        var dt = (now - p.t) / 1000;
        l._up = (cur.tx - p.tx) * 8 / dt;
        l._down = (cur.rx - p.rx) * 8 / dt;
        sample.links[l.name] = l._up + l._down;
      }
      prev[l.name] = cur;
    });
    hist.push(sample);
    while (hist.length && hist[0].t < now - HISTORY_S * 1000) hist.shift();
  }

  function renderLinks(doc) {
    var tb = $('links').tBodies[0];
    tb.textContent = '';
    var up = 0;
    doc.links.forEach(function (l) {
      var m = l.modem || {}, sig = m.signal || {}, t = l.tunnel, p = l.policy;
      var tr = el('tr');
      var name = el('th', null, l.name);
      name.scope = 'row';
      name.style.borderLeft = '8px solid ' + color(l.name);
      tr.appendChild(name);
      tr.appendChild(el('td', null, m.operator ? m.operator.name || m.operator.mcc + m.operator.mnc : '–'));
      tr.appendChild(el('td', null, m.network_type || '–'));
      var s = el('td');
      s.appendChild(bars(sig.rsrp_dbm, sig.rssi_dbm));
      var parts = [];
      if (sig.rssi_dbm !== null && sig.rssi_dbm !== undefined) parts.push(sig.rssi_dbm + ' dBm');
      if (sig.rsrp_dbm !== null && sig.rsrp_dbm !== undefined) parts.push('RSRP ' + sig.rsrp_dbm);
      if (sig.sinr_db !== null && sig.sinr_db !== undefined) parts.push('SINR ' + sig.sinr_db);
      s.appendChild(el('span', 'small', parts.join(' · ') || 'no signal'));
      tr.appendChild(s);
      var st = l.display_state || 'down';
      if (st === 'up') up++;
      var sc = el('td');
      var badge = el('span', 'state ' + (STATE_CLASS[st] || 'bad'), st);
      if (p && p.reason) badge.title = p.reason;
      sc.appendChild(badge);
      tr.appendChild(sc);
      var w = p ? p.weight : t ? t.weight : null;
      tr.appendChild(el('td', null, w === null ? '–' : (w * 100).toFixed(0) + ' %'));
      tr.appendChild(el('td', null, rate(l._down)));
      tr.appendChild(el('td', null, rate(l._up)));
      tr.appendChild(el('td', null, t && t.srtt_ms !== null ? Math.round(t.srtt_ms) + ' ms' : '–'));
      tr.appendChild(el('td', null, t ? (t.loss * 100).toFixed(1) + ' %' : '–'));
      tb.appendChild(tr);
    });
    var online = doc.tunnel ? doc.tunnel.hub_state === 'connected' : up > 0;
    var sum = $('summary');
    sum.textContent = (online ? 'Passengers online' : 'Passengers OFFLINE') + ' · ' + up + '/' + doc.links.length + ' links up';
    sum.className = online ? 'ok' : 'bad';
  }

  function renderChart() {
    var c = $('tput'), g = c.getContext('2d'), W = c.width, H = c.height, pad = 40;
    g.clearRect(0, 0, W, H);
    var names = Object.keys(linkColor), max = 1e5, now = hist.length ? hist[hist.length - 1].t : Date.now();
    hist.forEach(function (s) {
      var sum = 0;
      names.forEach(function (n) { sum += s.links[n] || 0; });
      if (sum > max) max = sum;
    });
    g.fillStyle = '#000';
    g.font = '14px sans-serif';
    g.fillText(rate(max), 2, 14);
    g.fillText('-10 min', pad, H - 4);
    g.fillText('now', W - 30, H - 4);
    var x = function (t) { return pad + (W - pad - 4) * (1 - (now - t) / (HISTORY_S * 1000)); };
    var y = function (v) { return H - 20 - (H - 40) * v / max; };
    var base = hist.map(function () { return 0; });
    names.forEach(function (n) {
      if (hist.length < 2) return;
      g.beginPath();
      hist.forEach(function (s, i) { g.lineTo(x(s.t), y(base[i] + (s.links[n] || 0))); });
      for (var i = hist.length - 1; i >= 0; i--) g.lineTo(x(hist[i].t), y(base[i]));
      g.closePath();
      g.fillStyle = color(n);
      g.fill();
      hist.forEach(function (s, i) { base[i] += s.links[n] || 0; });
    });
    var leg = $('tput-legend');
    leg.textContent = '';
    names.forEach(function (n) {
      var s = el('span'), b = el('b');
      b.style.background = color(n);
      s.appendChild(b);
      s.appendChild(document.createTextNode(n));
      leg.appendChild(s);
    });
  }

  var SVGNS = 'http://www.w3.org/2000/svg';
  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  // ---- coverage map: cells of /api/v1/coverage around the vehicle, coloured per operator ----
  var VIEW_M = 2000, COV_REFRESH_MS = 60000;
  var cov = null, covBox = null, covAt = 0, covBusy = false, covOff = false, opLink = {}, opColor = {};
  function opName(op) { var l = opLink[op]; return l ? l.label + ' (' + op + ')' : op; }
  function opCol(op) {
    if (!opColor[op]) {
      // An operator a link is on wears that link's colour, so table, chart and map agree.
      var l = opLink[op];
      opColor[op] = l ? color(l.name) : COLORS[(Object.keys(opColor).length + 4) % COLORS.length];
    }
    return opColor[op];
  }
  function learnOps(doc) {
    doc.links.forEach(function (l) {
      var o = l.modem && l.modem.operator;
      if (o && o.mcc && o.mnc) opLink[o.mcc + '-' + o.mnc] = { name: l.name, label: o.name || l.name };
    });
  }
  function fillSelect(ops) {
    var sel = $('cov-op');
    if (sel.options.length === ops.length + 1) return;
    var keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    ops.forEach(function (op) { var o = el('option', null, opName(op)); o.value = op; sel.appendChild(o); });
    sel.value = keep;
  }
  function fetchCoverage(v) {
    if (covOff || covBusy) return;
    var inside = covBox && v[0] >= covBox[0] && v[1] >= covBox[1] && v[2] <= covBox[2] && v[3] <= covBox[3];
    if (inside && Date.now() - covAt < COV_REFRESH_MS) return;
    // Fetch half a view more on every side (fewer refetches while driving); the API takes <= 2 degrees.
    var cx = (v[0] + v[2]) / 2, cy = (v[1] + v[3]) / 2;
    var hx = Math.min((v[2] - v[0]), 0.95), hy = Math.min((v[3] - v[1]), 0.95);
    var b = [Math.max(cx - hx, -180), Math.max(cy - hy, -90), Math.min(cx + hx, 180), Math.min(cy + hy, 90)];
    covBusy = true;
    fetch('/api/v1/coverage?bbox=' + b.map(function (x) { return x.toFixed(5); }).join(','), { credentials: 'same-origin' })
      .then(function (r) { if (r.status === 404) covOff = true; if (!r.ok) throw r.status; return r.json(); })
      .then(function (j) {
        cov = j; covBox = b; covAt = Date.now();
        fillSelect(j.operators || []);
        if (lastDoc) renderPosition(lastDoc.position);
      })
      .catch(function () { covAt = Date.now(); covBox = b; })
      .then(function () { covBusy = false; });
  }
  // Per cell: the best operator (highest quality), or only the chosen one.
  function cellLayers(only) {
    var cells = {}, order = [];
    (cov && cov.features || []).forEach(function (f) {
      var pr = f.properties;
      if (only && pr.operator !== only) return;
      var c = cells[pr.cell];
      var q = pr.quality === null ? -1 : pr.quality;
      if (!c) { order.push(pr.cell); cells[pr.cell] = { f: f, q: q }; } else if (q > c.q) { c.f = f; c.q = q; }
    });
    return order.map(function (k) { return cells[k].f; });
  }

  function renderPosition(p) {
    var txt = $('pos');
    if (!p || !p.fix) { txt.textContent = 'No position fix (' + (p ? p.source : 'none') + ')'; txt.className = 'warn'; }
    else {
      txt.className = '';
      txt.textContent = p.lat.toFixed(5) + ', ' + p.lon.toFixed(5) + ' · ' +
        (p.speed_kmh === null ? '–' : Math.round(p.speed_kmh) + ' km/h') + ' · ' + p.source;
      var last = route[route.length - 1];
      if (!last || last[0] !== p.lat || last[1] !== p.lon) route.push([p.lat, p.lon]);
      if (route.length > ROUTE_MAX) route.splice(0, route.length - ROUTE_MAX);
    }
    var svg = $('route');
    svg.textContent = '';
    var here = p && p.fix ? [p.lat, p.lon] : route[route.length - 1];
    if (!here) return;
    // The view: VIEW_M around the vehicle, widened to show the dead zones ahead.
    var dLa = VIEW_M / 111320, dLo = dLa / Math.max(Math.cos(here[0] * Math.PI / 180), 0.01);
    var la0 = here[0] - dLa, la1 = here[0] + dLa, lo0 = here[1] - dLo, lo1 = here[1] + dLo;
    var ahead = (p && p.ahead || []).filter(function (a) { return a.dead_zone_lat !== null && a.dead_zone_lon !== null; });
    ahead.forEach(function (a) {
      la0 = Math.min(la0, a.dead_zone_lat - dLa / 4); la1 = Math.max(la1, a.dead_zone_lat + dLa / 4);
      lo0 = Math.min(lo0, a.dead_zone_lon - dLo / 4); lo1 = Math.max(lo1, a.dead_zone_lon + dLo / 4);
    });
    fetchCoverage([lo0, la0, lo1, la1]);
    var k = Math.cos((la0 + la1) / 2 * Math.PI / 180);
    var sc = Math.min(380 / ((lo1 - lo0) * k), 240 / (la1 - la0));
    var X = function (lon) { return 10 + (lon - lo0) * k * sc; }, Y = function (lat) { return 250 - (lat - la0) * sc; };
    var only = $('cov-op').value, counts = {}, dead = 0, groups = {};
    cellLayers(only).forEach(function (f) {
      var pr = f.properties, b = f.bbox, op = pr.operator;
      if (b[2] < lo0 || b[0] > lo1 || b[3] < la0 || b[1] > la1) return;
      if (!groups[op]) {
        // One layer per operator: the element a test or a reader can find by data-op.
        groups[op] = svgEl('g', { 'class': 'cov-op', 'data-op': op, fill: opCol(op) });
        svg.appendChild(groups[op]);
        counts[op] = 0;
      }
      // At least 6 px so a 50 m cell stays visible (and tappable) in a 5 km view.
      var w = Math.max(X(b[2]) - X(b[0]), 6), hgt = Math.max(Y(b[1]) - Y(b[3]), 6);
      var cx = (X(b[0]) + X(b[2])) / 2, cy = (Y(b[1]) + Y(b[3])) / 2;
      var r = svgEl('rect', { x: (cx - w / 2).toFixed(1), y: (cy - hgt / 2).toFixed(1), width: w.toFixed(1),
        height: hgt.toFixed(1), 'data-q': pr.quality === null ? '' : pr.quality });
      if (pr.dead) { r.setAttribute('fill', '#000'); r.setAttribute('class', 'cov-dead'); dead++; }
      else r.setAttribute('fill-opacity', (0.35 + 0.65 * (pr.quality || 0)).toFixed(2));
      var t = svgEl('title', {});
      t.textContent = opName(op) + (pr.dead ? ': DEAD ZONE' : ': quality ' + Math.round((pr.quality || 0) * 100) + ' %') +
        (pr.rsrp_dbm !== null ? ', RSRP ' + pr.rsrp_dbm + ' dBm' : '') +
        (pr.goodput_kbps !== null ? ', ' + rate(pr.goodput_kbps * 1000) : '') + ', ' + pr.trips + ' trips';
      r.appendChild(t);
      groups[op].appendChild(r);
      counts[op]++;
    });
    if (route.length > 1)
      svg.appendChild(svgEl('polyline', { points: route.map(function (q) { return X(q[1]).toFixed(1) + ',' + Y(q[0]).toFixed(1); }).join(' '),
        fill: 'none', stroke: '#000', 'stroke-width': 3, 'stroke-linejoin': 'round' }));
    ahead.forEach(function (a, i) {
      var c = svgEl('circle', { cx: X(a.dead_zone_lon), cy: Y(a.dead_zone_lat), r: 8 + 2 * i, fill: 'none',
        stroke: opCol(a.operator), 'stroke-width': 4, 'class': 'ahead', 'data-op': a.operator });
      var t = svgEl('title', {}); t.textContent = opName(a.operator) + ' dead zone in ' + dist(a.dead_zone_in_m); c.appendChild(t);
      svg.appendChild(c);
    });
    if (p && p.fix) svg.appendChild(svgEl('circle', { cx: X(p.lon), cy: Y(p.lat), r: 8, fill: '#fff', stroke: '#000', 'stroke-width': 4, 'class': 'vehicle' }));
    var leg = $('cov-legend'), parts = [];
    leg.textContent = '';
    Object.keys(counts).forEach(function (op) {
      var s = el('span'), b = el('b');
      b.style.background = opCol(op);
      s.appendChild(b);
      s.appendChild(document.createTextNode(opName(op) + ' ' + counts[op]));
      leg.appendChild(s);
      parts.push(opName(op) + ' ' + counts[op]);
    });
    svg.setAttribute('aria-label', 'Coverage map around the vehicle: ' +
      (covOff ? 'map off' : (only ? opName(only) + ' cells: ' : 'best operator per cell: ') + (parts.join(', ') || 'no data')) +
      (dead ? '; ' + dead + ' dead cells' : '') + (ahead.length ? '; ' + ahead.length + ' dead zones ahead' : ''));
    if (covOff) leg.textContent = 'coverage map off';
    else if (cov && cov.truncated) leg.appendChild(el('span', 'small', '(more cells than shown)'));
  }

  function renderAhead(p) {
    var ul = $('ahead');
    ul.textContent = '';
    var list = p && p.ahead || [];
    if (!list.length) { ul.appendChild(el('li', 'small', 'no prediction yet')); return; }
    list.forEach(function (a) {
      var dead = a.dead_zone_in_s !== null;
      var li = el('li', dead ? (a.dead_zone_in_s < 120 ? 'bad' : 'warn') : 'ok');
      li.textContent = a.operator + ': ' + (dead ? 'dead zone in ' + dist(a.dead_zone_in_m) + ' (' + dur(a.dead_zone_in_s) + ')' : 'no dead zone ahead') +
        ' · confidence ' + Math.round((a.confidence || 0) * 100) + ' %';
      ul.appendChild(li);
    });
  }

  function renderBalances(doc) {
    var ul = $('balances');
    ul.textContent = '';
    doc.links.forEach(function (l) {
      var b = l.modem && l.modem.balance;
      if (!l.modem) return;
      var sim = l.sim, text = l.name + ': ' +
        (b ? (b.amount !== null ? b.amount.toFixed(2) : b.raw) : 'unknown');
      if (sim && sim.forecast_empty_utc)
        text += ' \u00b7 runs out ' + sim.forecast_empty_utc.slice(0, 10);
      if (sim && sim.spend_per_day)
        text += ' (' + sim.spend_per_day.toFixed(2) + '/day)';
      var low = sim ? sim.alert : (b && b.amount !== null && b.amount < 50);
      ul.appendChild(el('li', low ? 'bad' : '', text));
    });
  }

  function renderEvents(doc) {
    var ol = $('events');
    ol.textContent = '';
    doc.events.slice(-15).reverse().forEach(function (e) {
      var li = el('li');
      li.appendChild(el('span', 'small', new Date(e.wall_ms).toLocaleTimeString() + ' '));
      li.appendChild(el('b', null, e.source + ' ' + e.kind + ': '));
      li.appendChild(document.createTextNode(e.text));
      ol.appendChild(li);
    });
  }

  function renderActions(doc) {
    var box = $('action-list');
    if (box.childElementCount === doc.links.length) return; // keep focus stable between updates
    box.textContent = '';
    doc.links.forEach(function (l) {
      var d = el('div', 'act');
      d.appendChild(el('b', null, l.name + ' '));
      var add = function (label, path, danger) {
        var b = el('button', danger ? 'danger' : '', label);
        b.type = 'button';
        b.addEventListener('click', function () {
          if (danger && !window.confirm(label + ' ' + l.name + '?')) return;
          post(path.replace('{n}', encodeURIComponent(l.name)), null);
        });
        d.appendChild(b);
      };
      add('Disable', '/api/v1/links/{n}/disable', true);
      add('Enable', '/api/v1/links/{n}/enable', false);
      if (l.modem) {
        add('Reset modem', '/api/v1/modems/{n}/reset', true);
        add('Check balance', '/api/v1/modems/{n}/balance', false);
      }
      box.appendChild(d);
    });
  }

  function update(doc) {
    lastDoc = doc;
    lastSeen = Date.now();
    $('vehicle').textContent = 'corridor · ' + doc.vehicle_id;
    // Rates from the server's clock: exact spacing, and immune to a frozen/virtual page clock.
    throughput(doc, doc.wall_ms || Date.now());
    renderLinks(doc);
    learnOps(doc);
    renderChart();
    renderPosition(doc.position);
    renderAhead(doc.position);
    renderBalances(doc);
    renderEvents(doc);
    var t = doc.tunnel;
    $('tunnel').textContent = t ? 'hub ' + t.hub_index + ' ' + t.hub_state + ' · ' + t.hub_switches + ' switches' : 'monitor only (no tunnel)';
    renderActions(doc);
    var c = $('conn');
    c.textContent = 'live · up ' + dur(doc.uptime_s);
    c.className = 'ok';
  }

  function connect() {
    if (!window.EventSource) { poll(); return; }
    var es = new EventSource('/api/v1/stream');
    // "#events=N" stops after N updates: lets headless browsers (tests, screenshots) finish.
    var limit = /events=(\d+)/.exec(location.hash), seen = 0;
    es.addEventListener('status', function (ev) {
      try { update(JSON.parse(ev.data)); } catch (e) { /* keep the last good view */ }
      if (limit && ++seen >= +limit[1]) es.close();
    });
    es.onerror = function () { var c = $('conn'); c.textContent = 'reconnecting…'; c.className = 'bad'; };
  }
  function poll() {
    fetch('/api/v1/status', { credentials: 'same-origin' }).then(function (r) { return r.json(); })
      .then(update).catch(function () {}).then(function () { setTimeout(poll, 1000); });
  }
  setInterval(function () {
    if (lastSeen && Date.now() - lastSeen > 3000) { var c = $('conn'); c.textContent = 'stale: no update for ' + dur((Date.now() - lastSeen) / 1000); c.className = 'bad'; }
  }, 1000);

  function msg(text, bad) { var m = $('admin-msg'); m.textContent = text; m.className = bad ? 'bad' : 'ok'; }
  function setLogged(on) {
    $('login').hidden = on;
    $('actions').hidden = !on;
    if (on && lastDoc) renderActions(lastDoc);
  }
  function post(path, body) {
    var h = { 'Content-Type': 'application/json' };
    if (csrf) h['X-CSRF-Token'] = csrf;
    return fetch(path, { method: 'POST', headers: h, credentials: 'same-origin', body: body ? JSON.stringify(body) : '{}' })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) { msg(j.error || ('HTTP ' + r.status), true); if (r.status === 401) setLogged(false); throw j; }
          if (j.action) msg(j.action + ' ' + j.link + ': accepted', false);
          return j;
        });
      });
  }
  $('cov-op').addEventListener('change', function () { if (lastDoc) renderPosition(lastDoc.position); });
  $('login').addEventListener('submit', function (ev) {
    ev.preventDefault();
    post('/api/v1/login', { password: $('pw').value }).then(function (j) {
      csrf = j.csrf_token; $('pw').value = ''; setLogged(true); msg('logged in', false);
    }).catch(function () {});
  });
  $('logout').addEventListener('click', function () {
    post('/api/v1/logout', null).catch(function () {}).then(function () { csrf = null; setLogged(false); });
  });
  fetch('/api/v1/session', { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (s) {
    if (!s.admin_enabled) { $('admin').hidden = true; return; }
    csrf = s.csrf_token || null;
    setLogged(!!s.logged_in);
  }).catch(function () {});
  connect();
})();
