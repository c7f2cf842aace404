// mmemu's HTML page-table view. Reads the dumps embedded in #mmemu-data (the objects of
// `mmemu run --format json`) and builds, per dump, the page-table tree coloured by VMA, the
// VMA list, the maple tree and the fork report; a timeline steps through the dumps and
// marks what changed since the previous one. Runs from a file: nothing is fetched.
(function () {
  'use strict';

  var data = JSON.parse(document.getElementById('mmemu-data').textContent);
  var dumps = Array.isArray(data.dumps) ? data.dumps : [];
  var app = document.getElementById('app');

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'text') e.textContent = v;
        else if (k === 'class') e.className = v;
        else e.setAttribute(k, v === true ? '' : String(v));
      });
    }
    (kids || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }
  function big(h) {
    try {
      return BigInt(h);
    } catch (err) {
      return null;
    }
  }
  function hx(b) {
    return '0x' + b.toString(16);
  }
  function mono(text, cls) {
    return el('span', { class: 'mono' + (cls ? ' ' + cls : ''), text: text });
  }
  function badge(text, cls, title) {
    return el('span', { class: 'badge ' + (cls || ''), text: text, title: title });
  }
  function plural(n, word) {
    return n + ' ' + word + (n === 1 ? '' : 's');
  }
  function tablesOf(d) {
    return (d.pgtables && Array.isArray(d.pgtables.tables)) ? d.pgtables.tables : [];
  }
  function vmasOf(d) {
    return (d.vmas && Array.isArray(d.vmas.vmas)) ? d.vmas.vmas : [];
  }

  // ------------------------------------------------------------------ VMA colours
  // One colour per VMA (by start and name) for the whole file, so a VMA keeps its colour
  // from dump to dump.
  var palette = ['#8ecae6', '#ffb703', '#90be6d', '#f28482', '#b8a1e3', '#f6bd60',
                 '#84a59d', '#e5989b', '#7bdff2', '#c9ada7', '#a3c4f3', '#ffd6a5',
                 '#caffbf', '#fdffb6', '#bdb2ff', '#ffc6ff'];
  var colourOf = {};
  var nColours = 0;
  function vmaKey(v) {
    return v.start + ' ' + (v.name || '');
  }
  function vmaColour(v) {
    var k = vmaKey(v);
    if (!(k in colourOf)) colourOf[k] = palette[nColours++ % palette.length];
    return colourOf[k];
  }
  function vmaLabel(v) {
    return v.start + '-' + v.end + ' ' + (v.perms || '') + ' ' + (v.name || '[anon]');
  }
  // The VMAs of dump d overlapping [lo, hi].
  function vmasIn(d, lo, hi) {
    var out = [];
    vmasOf(d).forEach(function (v) {
      var s = big(v.start), e = big(v.end);
      if (s !== null && e !== null && s <= hi && e - 1n >= lo) out.push(v);
    });
    return out;
  }

  // ------------------------------------------------------------------ diff keys
  // Tables are matched across dumps by level and span (frames differ between mms), leaf
  // pages by virtual address (an entry changed: its frame, protection or kind; mapcounts
  // move with other mms and are not the entry's), upper entries by table span and index,
  // VMAs by their range.
  function tableKey(t) {
    return t.level + '@' + t.va_start;
  }
  function pagesOf(d) {
    var pages = new Map();
    tablesOf(d).forEach(function (t) {
      (t.runs || []).forEach(function (r) {
        var va = big(r.va_start), f = big(r.frame_first);
        if (va === null || f === null) return;
        for (var i = 0; i <= r.last - r.first; i++) {
          var frame = r.present ? hx(r.kind === 'zero-page' ? f : f + BigInt(i)) : '-';
          pages.set(hx(va + BigInt(i) * 4096n),
                    [frame, r.present, r.prot, r.kind].join(' '));
        }
      });
    });
    return pages;
  }
  function entriesOf(d) {
    var m = new Map();
    tablesOf(d).forEach(function (t) {
      (t.entries || []).forEach(function (e) {
        m.set(tableKey(t) + '#' + e.index, e.bits + (e.table ? ' table' : ' leaf'));
      });
    });
    return m;
  }
  function vmaDiffKey(v) {
    return v.start + '-' + v.end + ' ' + v.perms + ' ' + (v.name || '');
  }
  // What changed from dump a to dump b (a may be null: the first dump).
  function diff(a, b) {
    var r = { newTables: new Set(), freedTables: [], changedPages: new Set(), newPages: new Set(), gonePages: 0,
              changedEntries: new Set(), vmasAdded: [], vmasRemoved: [], counters: [] };
    if (!a) return r;
    var at = new Map(), bt = new Set();
    tablesOf(a).forEach(function (t) { at.set(tableKey(t), t); });
    tablesOf(b).forEach(function (t) {
      bt.add(tableKey(t));
      if (!at.has(tableKey(t))) r.newTables.add(tableKey(t));
    });
    at.forEach(function (t, k) { if (!bt.has(k)) r.freedTables.push(t); });
    var ap = pagesOf(a), bp = pagesOf(b);
    bp.forEach(function (v, k) {
      if (!ap.has(k)) r.newPages.add(k);
      else if (ap.get(k) !== v) r.changedPages.add(k);
    });
    ap.forEach(function (v, k) { if (!bp.has(k)) r.gonePages++; });
    var ae = entriesOf(a), be = entriesOf(b);
    be.forEach(function (v, k) { if (ae.get(k) !== v) r.changedEntries.add(k); });
    var av = new Set(vmasOf(a).map(vmaDiffKey)), bv = new Set(vmasOf(b).map(vmaDiffKey));
    vmasOf(b).forEach(function (v) { if (!av.has(vmaDiffKey(v))) r.vmasAdded.push(v); });
    vmasOf(a).forEach(function (v) { if (!bv.has(vmaDiffKey(v))) r.vmasRemoved.push(v); });
    var ac = flatCounters(a.counters), bc = flatCounters(b.counters);
    Object.keys(bc).forEach(function (k) {
      if (k !== 'mm' && typeof bc[k] === 'number' && typeof ac[k] === 'number' && ac[k] !== bc[k])
        r.counters.push([k, ac[k], bc[k]]);
    });
    return r;
  }
  function flatCounters(c, prefix, out) {
    out = out || {};
    if (!c || typeof c !== 'object') return out;
    Object.keys(c).forEach(function (k) {
      var name = prefix ? prefix + '.' + k : k;
      if (c[k] && typeof c[k] === 'object') flatCounters(c[k], name, out);
      else out[name] = c[k];
    });
    return out;
  }
  function diffSize(df) {
    return df.newTables.size + df.freedTables.length + df.changedPages.size + df.newPages.size +
           df.gonePages +
           df.changedEntries.size + df.vmasAdded.length + df.vmasRemoved.length;
  }

  // ------------------------------------------------------------------ page tables
  var childLevel = { pgd: 'pud', pud: 'pmd', pmd: 'pte' };

  function tableSummary(d, t, df) {
    var lo = big(t.va_start), hi = big(t.va_last);
    var vs = (lo !== null && hi !== null) ? vmasIn(d, lo, hi) : [];
    var kids = [
      mono(t.level.toUpperCase(), 'lvl'),
      mono('frame ' + t.pfn, 'frame'),
      mono(t.va_start + ' – ' + t.va_last, 'span'),
      el('span', { class: 'used', text: 'used ' + t.used })
    ];
    var cls = 'pt lvl-' + t.level;
    if (t.kernel_half) {
      kids.push(badge('kernel-half (init_mm)', 'kernel',
                      'shared with every mm: init_mm\'s table, not counted as this mm\'s ' +
                      (t.kernel_half_ranges || []).join(' ')));
      cls += ' kernel-half';
    } else if (t.arch_only) {
      kids.push(badge('arch-only ' + (t.arch_mappings || []).join(' '), 'arch',
                      'serves only arch mappings, no VMA in its span'));
      cls += ' arch-only';
    } else if (!t.has_vma) {
      kids.push(badge('no VMA', 'warn', 'no VMA or arch mapping in its span'));
    }
    if (df.newTables.has(tableKey(t))) {
      kids.push(badge('new', 'new', 'not in the previous dump'));
      cls += ' is-new';
    }
    var bar = el('span', { class: 'vmabar' });
    vs.slice(0, 8).forEach(function (v) {
      bar.appendChild(el('i', { style: 'background:' + vmaColour(v), title: vmaLabel(v) }));
    });
    if (vs.length > 8) bar.appendChild(el('span', { text: '+' + (vs.length - 8) }));
    if (vs.length) kids.push(bar);
    var colour = t.kernel_half || t.arch_only ? null : (vs.length ? vmaColour(vs[0]) : null);
    return { summary: el('summary', { title: vs.map(vmaLabel).join('\n') || 'no VMA' }, kids),
             cls: cls, colour: colour };
  }

  function runRow(d, di, r, df) {
    var n = r.last - r.first + 1;
    var idx = n === 1 ? 'pte[' + r.first + ']' : 'pte[' + r.first + '..' + r.last + ']';
    var frames = !r.present ? 'not present'
      : n === 1 ? 'frame ' + r.frame_first
      : r.frame_first === r.frame_last ? 'frame ' + r.frame_first + ' ×' + n
      : 'frames ' + r.frame_first + '..' + r.frame_last;
    var va = big(r.va_start);
    var vs = va !== null ? vmasIn(d, va, va) : [];
    var shared = r.present && r.kind !== 'zero-page' && r.mapcount > 1;
    // changed: some page's frame, protection or kind differs from the previous dump;
    // new: none of its pages was mapped there.
    var changed = false, fresh = va !== null && df.newPages.size > 0;
    if (va !== null) {
      for (var i = 0; i < n; i++) {
        var k = hx(va + BigInt(i) * 4096n);
        if (df.changedPages.has(k)) changed = true;
        if (!df.newPages.has(k)) fresh = false;
      }
    }
    var tip = ['raw ' + r.raw + '  ' + r.bits, r.va_start + ' – ' + r.va_last,
               r.present ? r.kind + ', mapcount ' + r.mapcount + ', refcount ' +
                           (r.refcount === undefined ? '?' : r.refcount) : 'not present'];
    if (vs.length) tip.push('VMA ' + vmaLabel(vs[0]));
    (r.rmap || []).forEach(function (h) {
      tip.push('mapped by mm ' + h.mm + ' at ' + h.va + ' (VMA ' + h.vma + ')');
    });
    var cls = 'run' + (shared ? ' shared' : '') + (changed ? ' is-changed' : '') +
              (fresh ? ' is-new' : '') +
              (r.present ? '' : ' not-present');
    var row = el('div', {
      class: cls, title: tip.join('\n'), 'data-ff': r.present ? r.frame_first : null,
      'data-fl': r.present ? r.frame_last : null, 'data-zero': r.kind === 'zero-page',
      'data-dump': di, tabindex: shared ? 0 : null,
      style: vs.length ? 'border-left-color:' + vmaColour(vs[0]) : null
    }, [
      mono(idx, 'idx'), mono(r.va_start + ' – ' + r.va_last, 'span'), mono('→ ' + frames, 'frame'),
      r.present ? mono(r.prot, 'prot') : null, r.present ? el('span', { class: 'kind', text: r.kind }) : null,
      shared ? badge('shared ×' + r.mapcount, 'shared', 'mapcount ' + r.mapcount + ', refcount ' +
                     r.refcount + ': click for every mapping') : null,
      changed ? badge('changed', 'changed', 'differs from the previous dump') : null,
      fresh ? badge('new', 'new', 'not mapped in the previous dump') : null
    ]);
    row._run = r;
    row._dump = di;
    return row;
  }

  function renderTable(d, di, t, byParent, df) {
    var s = tableSummary(d, t, df);
    var det = el('details', { class: s.cls, 'data-table': t.pfn, 'data-level': t.level,
                              style: s.colour ? '--vma:' + s.colour : null }, [s.summary]);
    det.open = !t.kernel_half;
    var body = el('div', { class: 'pt-body' });
    det.appendChild(body);
    if (t.level === 'pte') {
      (t.runs || []).forEach(function (r) { body.appendChild(runRow(d, di, r, df)); });
      if (!(t.runs || []).length) body.appendChild(el('div', { class: 'muted', text: 'no entries' }));
      return det;
    }
    var kids = byParent.get(t.pfn) || [];
    (t.entries || []).forEach(function (e) {
      var key = tableKey(t) + '#' + e.index;
      var changed = df.changedEntries.has(key);
      var lvl = childLevel[t.level] || '';
      var row = el('div', { class: 'entry' + (changed ? ' is-changed' : ''),
                            title: 'raw ' + e.raw + '\n' + e.bits }, [
        mono(t.level + '[' + e.index + ']', 'idx'),
        mono(e.bits, 'bits'),
        e.table ? mono('→ ' + lvl + ' ' + e.table, 'frame') : mono('(not a table entry)', 'warn'),
        e.kernel_half ? badge('kernel-half', 'kernel') : null,
        changed ? badge('changed', 'changed', 'differs from the previous dump') : null
      ]);
      body.appendChild(row);
      if (e.table) {
        var child = kids.find(function (c) { return c.pfn === e.table; });
        if (child) body.appendChild(renderTable(d, di, child, byParent, df));
      }
    });
    return det;
  }

  function renderTables(d, di, df) {
    var tables = tablesOf(d);
    var byParent = new Map();
    tables.forEach(function (t) {
      if (t.parent === null || t.parent === undefined) return;
      if (!byParent.has(t.parent)) byParent.set(t.parent, []);
      byParent.get(t.parent).push(t);
    });
    var box = el('div', { class: 'tables' });
    var c = (d.pgtables && d.pgtables.counts) || {};
    box.appendChild(el('h2', { text: 'Page tables' }, [
      el('span', { class: 'muted', text: '  ' + plural(c.total || 0, 'table') + ' (pgd ' +
                   (c.pgd || 0) + ', pud ' + (c.pud || 0) + ', pmd ' + (c.pmd || 0) + ', pte ' +
                   (c.pte || 0) + ')' + (c.kernel_half_shared ? ' + ' + c.kernel_half_shared +
                   ' shared kernel-half' : '') })
    ]));
    var tools = el('div', { class: 'tools' }, [
      el('button', { type: 'button', 'data-act': 'open', text: 'expand all' }),
      el('button', { type: 'button', 'data-act': 'close', text: 'collapse all' })
    ]);
    tools.addEventListener('click', function (ev) {
      var act = ev.target.getAttribute && ev.target.getAttribute('data-act');
      if (!act) return;
      box.querySelectorAll('details.pt').forEach(function (x) { x.open = act === 'open'; });
    });
    box.appendChild(tools);
    var roots = tables.filter(function (t) { return t.parent === null || t.parent === undefined; });
    roots.forEach(function (t) { box.appendChild(renderTable(d, di, t, byParent, df)); });
    // Tables no parent entry leads to (should not happen) still get their element.
    var placed = new Set();
    box.querySelectorAll('[data-table]').forEach(function (x) { placed.add(x.getAttribute('data-table')); });
    tables.forEach(function (t) {
      if (!placed.has(t.pfn)) {
        box.appendChild(renderTable(d, di, t, new Map(), df));
        placed.add(t.pfn);
      }
    });
    var pg = d.pgtables || {};
    (pg.arch_mappings || []).forEach(function (a) {
      box.appendChild(el('div', { class: 'note' }, [badge('arch mapping', 'arch'),
        mono(' ' + a.name + ' ' + a.start + ' – ' + a.end + ' (no VMA)')]));
    });
    (pg.freed_in_use || []).forEach(function (f) {
      box.appendChild(el('div', { class: 'note bad' }, [badge('freed while in use', 'bad'),
        mono(' ' + (typeof f === 'string' ? f : JSON.stringify(f)))]));
    });
    return box;
  }

  // ------------------------------------------------------------------ side panels
  function panel(title, kids, open) {
    var p = el('details', { class: 'panel' }, [el('summary', { text: title })].concat(kids));
    p.open = open !== false;
    return p;
  }

  function renderVmas(d, df) {
    var added = new Set(df.vmasAdded.map(vmaDiffKey));
    var rows = vmasOf(d).map(function (v) {
      return el('tr', { class: added.has(vmaDiffKey(v)) ? 'is-new' : null,
                        title: (v.maps || '') + '\n' + (v.flags || '') +
                               '\nanon_vma ' + (v.anon_vma === null ? '-' : v.anon_vma) }, [
        el('td', {}, [el('i', { class: 'swatch', style: 'background:' + vmaColour(v) })]),
        el('td', { class: 'mono', text: v.start + '-' + v.end }),
        el('td', { class: 'mono', text: v.perms }),
        el('td', { text: v.name || '[anon]' }),
        el('td', { class: 'mono muted', text: v.anon_vma === null ? '' : 'av#' + v.anon_vma })
      ]);
    });
    var vm = d.vmas || {};
    var head = plural(vmasOf(d).length, 'VMA') + (vm.xa_zero ? ' · XA_ZERO marker in tree' : '');
    return panel('VMAs (' + head + ')', [el('table', { class: 'vmas' }, [el('tbody', {}, rows)])]);
  }

  function renderTree(d) {
    var t = d.tree;
    if (!t) return panel('Maple tree', [el('div', { class: 'muted', text: 'not in this dump' })], false);
    var lines = (t.node_list || []).map(function (n) {
      var txt = (n.id || '') + ' ' + (n.type || '') + ' [' + (n.min || '') + ', ' + (n.max || '') + ']';
      var tip = ['pivots', 'slots', 'gaps'].filter(function (k) { return n[k]; })
        .map(function (k) { return k + ': ' + n[k].join(' '); }).join('\n');
      return el('div', { class: 'node mono', style: 'padding-left:' + (n.depth * 14) + 'px',
                         title: tip }, [txt, n.slots ? el('span', { class: 'muted',
                         text: '  ' + n.slots.join(' ') }) : null]);
    });
    var entries = (t.entry_list || []).map(function (e) {
      return el('div', { class: 'mono tree-entry' }, [e.first + ' – ' + e.last + '  ', el('b', { text: e.entry })]);
    });
    return panel('Maple tree (' + t.entries + ' entries, ' + plural(t.nodes, 'node') +
                 ', height ' + t.height + ')', [el('div', { class: 'tree' }, lines),
                 el('details', { class: 'sub' }, [el('summary', { text: 'entries' })].concat(entries))]);
  }

  function renderDiff(base, df) {
    if (base < 0) return panel('Changes', [el('div', { class: 'muted',
      text: mode === 'pid' ? 'first dump of this process' : 'first dump' })]);
    var items = [];
    function item(cls, text) { items.push(el('li', { class: cls, text: text })); }
    df.newTables.forEach(function (k) { item('add', 'table new: ' + k.replace('@', ' at ')); });
    df.freedTables.forEach(function (t) { item('del', 'table gone: ' + t.level + ' at ' + t.va_start + ' (frame ' + t.pfn + ')'); });
    if (df.changedEntries.size) item('chg', plural(df.changedEntries.size, 'upper entry') + ' changed');
    if (df.newPages.size) item('add', plural(df.newPages.size, 'PTE') + ' new');
    if (df.changedPages.size) item('chg', plural(df.changedPages.size, 'PTE') + ' changed');
    if (df.gonePages) item('del', plural(df.gonePages, 'PTE') + ' gone');
    df.vmasAdded.forEach(function (v) { item('add', 'VMA added: ' + vmaLabel(v)); });
    df.vmasRemoved.forEach(function (v) { item('del', 'VMA removed: ' + vmaLabel(v)); });
    df.counters.forEach(function (c) { item('chg', c[0] + ': ' + c[1] + ' → ' + c[2]); });
    if (!items.length) items.push(el('li', { class: 'muted', text: 'no differences' }));
    var p = dumps[base];
    return panel('Changes since #' + (base + 1) + ' (pid ' + p.pid + ', mm ' + (p.pgtables || {}).mm + ')',
                 [el('ul', { class: 'diff' }, items)]);
  }

  function renderDetail(d) {
    var lines = Array.isArray(d.detail) ? d.detail : [];
    if (!lines.length) return null;
    return panel('Fork report', [el('pre', { class: 'detail', text: lines.join('\n') })]);
  }

  // ------------------------------------------------------------------ frames
  var frameBox = el('div', { class: 'frame-info', id: 'frame-info' });
  var selected = null;  // BigInt frame

  function runHas(row, f) {
    var a = big(row.getAttribute('data-ff')), b = big(row.getAttribute('data-fl'));
    return a !== null && b !== null && f >= a && f <= b;
  }
  function selectFrame(row) {
    var r = row._run;
    selected = big(r.frame_first);
    var inDumps = new Set();
    document.querySelectorAll('.run[data-ff]').forEach(function (x) {
      var on = runHas(x, selected);
      x.classList.toggle('sel-frame', on);
      if (on) inDumps.add(Number(x.getAttribute('data-dump')));
    });
    document.querySelectorAll('.step').forEach(function (s) {
      s.classList.toggle('has-frame', inDumps.has(Number(s.getAttribute('data-step'))));
    });
    frameBox.textContent = '';
    frameBox.appendChild(el('h3', { text: 'Frame ' + r.frame_first + (r.frame_first !== r.frame_last ? ' (run to ' + r.frame_last + ')' : '') }));
    frameBox.appendChild(el('div', { text: r.kind + ' · mapcount ' + r.mapcount + ' · refcount ' + r.refcount }));
    var list = el('ul', { class: 'maps' });
    (r.rmap || []).forEach(function (h) {
      var self = Number(dumps[row._dump].pgtables.mm) === Number(h.mm) && h.frame === r.frame_first;
      list.appendChild(el('li', { class: 'mono' + (self ? ' self' : '') },
        ['frame ' + h.frame + ' ← mm ' + h.mm + ' va ' + h.va + ' (VMA ' + h.vma + ')' + (self ? '  this mm' : '')]));
    });
    if (r.rmap_truncated) list.appendChild(el('li', { class: 'muted', text: '… more' }));
    if (!(r.rmap || []).length) list.appendChild(el('li', { class: 'muted', text: 'no rmap walk (mapped once)' }));
    frameBox.appendChild(el('div', { text: 'mappings found by rmap:' }));
    frameBox.appendChild(list);
    var steps = el('div', { text: 'in dumps: ' });
    inDumps.forEach(function (i) {
      steps.appendChild(el('button', { type: 'button', class: 'link', 'data-goto': i, text: '#' + (i + 1) }));
    });
    frameBox.appendChild(steps);
  }
  document.addEventListener('click', function (ev) {
    var g = ev.target.closest && ev.target.closest('[data-goto]');
    if (g) { show(Number(g.getAttribute('data-goto'))); return; }
    var row = ev.target.closest && ev.target.closest('.run[data-ff]');
    if (row) selectFrame(row);
  });
  var hovered = null;
  document.addEventListener('mouseover', function (ev) {
    var row = ev.target.closest && ev.target.closest('.run.shared');
    if (row === hovered) return;
    hovered = row;
    document.querySelectorAll('.hover-frame').forEach(function (x) { x.classList.remove('hover-frame'); });
    if (!row) return;
    var f = big(row.getAttribute('data-ff'));
    document.querySelectorAll('.run[data-ff]').forEach(function (x) {
      if (runHas(x, f)) x.classList.add('hover-frame');
    });
  });

  // ------------------------------------------------------------------ timeline
  var sections = [];
  var steps = [];
  var current = 0;
  function show(i) {
    if (!sections.length) return;
    current = Math.max(0, Math.min(sections.length - 1, i));
    sections.forEach(function (s, k) { s.hidden = k !== current; });
    steps.forEach(function (s, k) { s.classList.toggle('current', k === current); });
    document.getElementById('pos').textContent = (current + 1) + ' / ' + sections.length;
    if (history.replaceState) history.replaceState(null, '', '#' + (current + 1));
  }

  // What dump i is compared with: the previous dump, or (mode "pid") the previous dump of
  // the same process; -1 for none.
  var mode = 'prev';
  function baseOf(i) {
    if (mode !== 'pid') return i - 1;
    for (var j = i - 1; j >= 0; j--)
      if (dumps[j].pid === dumps[i].pid) return j;
    return -1;
  }

  var line, main;
  // (Re)builds the timeline steps and one section per dump.
  function fill() {
    line.textContent = '';
    main.textContent = '';
    sections = [];
    steps = [];
    dumps.forEach(function (d, i) {
      var base = baseOf(i);
      var df = diff(base >= 0 ? dumps[base] : null, d);
      var n = diffSize(df);
      var step = el('li', { class: 'step', 'data-step': i, tabindex: 0,
                            title: (d.label || '') + (base >= 0 ? '\n' + n + ' differences from #' + (base + 1) : '') }, [
        el('b', { text: '#' + (i + 1) + ' ' + (d.dump || 'dump') }),
        el('span', { text: 'pid ' + d.pid + (d.arch ? ' · ' + d.arch : '') }),
        el('span', { class: 'lbl', text: d.label || '' }),
        base >= 0 && n ? el('span', { class: 'chg', text: 'Δ ' + n }) : null
      ]);
      step.addEventListener('click', function () { show(i); });
      step.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') show(i); });
      line.appendChild(step);
      steps.push(step);
      var side = el('div', { class: 'side' }, [
        renderDetail(d), renderDiff(base, df), renderVmas(d, df), renderTree(d)
      ]);
      var title = el('h2', { class: 'dump-title' }, [
        '#' + (i + 1) + ' ' + (d.dump || 'dump') + ' · pid ' + d.pid + ' · ',
        el('span', { class: 'mono', text: (d.label || '') }),
        el('span', { class: 'muted', text: '  ' + (d.arch || '') + ' · mm ' + ((d.pgtables || {}).mm) })
      ]);
      var sec = el('section', { class: 'dump', 'data-dump': i }, [
        title, el('div', { class: 'cols' }, [renderTables(d, i, df), side])
      ]);
      main.appendChild(sec);
      sections.push(sec);
    });
    frameBox.textContent = '';
  }

  function build() {
    var head = el('div', { class: 'bar' });
    app.appendChild(head);
    if (!dumps.length) {
      app.appendChild(el('p', { class: 'empty', text: 'No page-table dumps in this file.' }));
      head.appendChild(el('span', { id: 'pos', text: '0 / 0' }));
      return;
    }
    var prev = el('button', { type: 'button', id: 'prev', text: '◀', title: 'previous dump (←)' });
    var next = el('button', { type: 'button', id: 'next', text: '▶', title: 'next dump (→)' });
    line = el('ol', { class: 'timeline' });
    var compare = el('select', { id: 'compare', title: 'what each dump is compared with' }, [
      el('option', { value: 'prev', text: 'the previous dump' }),
      el('option', { value: 'pid', text: 'the previous dump of its pid' })
    ]);
    head.appendChild(prev);
    head.appendChild(line);
    head.appendChild(next);
    head.appendChild(el('span', { id: 'pos', class: 'muted' }));
    main = el('div', { class: 'dumps' });
    var legend = el('div', { class: 'legend' }, [
      el('label', { class: 'compare' }, ['compare with ', compare]),
      el('span', {}, [badge('new', 'new'), ' not there before']),
      el('span', {}, [badge('changed', 'changed'), ' differs']),
      el('span', {}, [badge('shared ×2', 'shared'), ' mapped twice (click)']),
      el('span', {}, [badge('arch-only', 'arch'), ' no VMA in span']),
      el('span', {}, [badge('kernel-half', 'kernel'), ' init_mm\'s'])
    ]);
    app.appendChild(legend);
    app.appendChild(main);
    app.appendChild(frameBox);
    fill();
    compare.addEventListener('change', function () {
      mode = compare.value;
      fill();
      show(current);
    });
    prev.addEventListener('click', function () { show(current - 1); });
    next.addEventListener('click', function () { show(current + 1); });
    document.addEventListener('keydown', function (ev) {
      if (ev.target && ev.target.tagName === 'SELECT') return;
      if (ev.key === 'ArrowLeft') show(current - 1);
      else if (ev.key === 'ArrowRight') show(current + 1);
    });
    // #N shows dump N; #N/FRAME also selects that frame (as a click on it would).
    var hash = (location.hash || '').replace('#', '').split('/');
    var want = parseInt(hash[0], 10);
    show(isNaN(want) ? 0 : want - 1);
    var f = hash[1] ? big(hash[1]) : null;
    if (f !== null) {
      var rows = sections[current].querySelectorAll('.run[data-ff]');
      for (var i = 0; i < rows.length; i++) {
        if (runHas(rows[i], f)) { selectFrame(rows[i]); break; }
      }
    }
  }

  build();
  document.body.setAttribute('data-rendered', String(dumps.length));
})();
