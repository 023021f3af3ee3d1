// ailedger audit receipts, verified in the browser (and in Node.js, for the tests).
//
// Recomputes an audit receipt's RFC 6962 Merkle inclusion path with WebCrypto SHA-256:
// leaf = SHA-256(0x00 || entry bytes), node = SHA-256(0x01 || left || right), walking
// the path as RFC 9162 section 2.1.3.2 does (the same steps as ailedger/audit/merkle.py),
// and compares the root it reaches with the root the node anchored on chain
// (AuditAnchor, read through GET /api/v1/audit/anchors). The path is drawn as SVG.
//
// The pure functions are exported on globalThis.AiledgerVerify (and module.exports under
// Node.js). No inline script anywhere: the page's elements are found by id, and the URLs
// come from data- attributes (the Content-Security-Policy allows only script-src 'self').
"use strict";

(function (root) {
  var subtle = root.crypto && root.crypto.subtle;

  // ---------------------------------------------------------------- bytes and hashes

  function b64decode(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
      throw new Error("not base64: " + String(text).slice(0, 40));
    }
    var raw = atob(text);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function b64encode(bytes) {
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw);
  }

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] + 256).toString(16).slice(1); }
    return out;
  }

  function equal(a, b) {
    if (!a || !b || a.length !== b.length) { return false; }
    for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false; } }
    return true;
  }

  function concat(prefix, parts) {
    var length = 1;
    parts.forEach(function (p) { length += p.length; });
    var out = new Uint8Array(length);
    out[0] = prefix;
    var at = 1;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await subtle.digest("SHA-256", bytes));
  }

  // RFC 6962 section 2.1: leaf and interior node hashes.
  function leafHash(data) { return sha256(concat(0, [data])); }
  function nodeHash(left, right) { return sha256(concat(1, [left, right])); }

  function validHash(h) { return h instanceof Uint8Array && h.length === 32; }

  // Sizes and indices as BigInt: tree sizes go up to 2**64 - 1, past what a Number holds.
  function big(n) { return typeof n === "bigint" ? n : BigInt(n); }

  // ---------------------------------------------------------------- RFC 9162 2.1.3.2

  // Which side each proof hash joins on, from the leaf up: "left" (node(p, r)) or
  // "right" (node(r, p)); null when a proof of this length cannot be one for the position.
  function inclusionSides(index, size, proofLength) {
    var fn = big(index), sn = big(size) - 1n, sides = [];
    if (fn < 0n || fn > sn) { return null; }
    for (var i = 0; i < proofLength; i++) {
      if (sn === 0n) { return null; }
      if ((fn & 1n) === 1n || fn === sn) {
        sides.push("left");
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        sides.push("right");
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n ? sides : null;
  }

  // The path from the leaf up: [{side, sibling, hash}] where hash is the node reached
  // after joining the sibling; null when the proof is malformed for the position.
  async function inclusionPath(leaf, index, size, proof) {
    if (!validHash(leaf) || !proof.every(validHash)) { return null; }
    var sides = inclusionSides(index, size, proof.length);
    if (sides === null) { return null; }
    var r = leaf, steps = [];
    for (var i = 0; i < proof.length; i++) {
      r = sides[i] === "left" ? await nodeHash(proof[i], r) : await nodeHash(r, proof[i]);
      steps.push({ side: sides[i], sibling: proof[i], hash: r });
    }
    return { root: r, steps: steps };
  }

  async function verifyInclusion(leaf, index, size, proof, rootHash) {
    if (!validHash(rootHash)) { return false; }
    var path = await inclusionPath(leaf, index, size, proof);
    return path !== null && equal(path.root, rootHash);
  }

  // ---------------------------------------------------------------- RFC 9162 2.1.4.2

  async function verifyConsistency(size1, size2, proof, root1, root2) {
    var s1 = big(size1), s2 = big(size2);
    if (!(s1 > 0n && s1 <= s2)) { return false; }
    if (s1 === s2) { return proof.length === 0 && equal(root1, root2); }
    if (proof.length === 0 || !validHash(root1) || !validHash(root2) || !proof.every(validHash)) {
      return false;
    }
    var path = proof.slice();
    if ((s1 & (s1 - 1n)) === 0n) { path.unshift(root1); }
    var fn = s1 - 1n, sn = s2 - 1n;
    while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
    var fr = path[0], sr = path[0];
    for (var i = 1; i < path.length; i++) {
      var c = path[i];
      if (sn === 0n) { return false; }
      if ((fn & 1n) === 1n || fn === sn) {
        fr = await nodeHash(c, fr);
        sr = await nodeHash(c, sr);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        sr = await nodeHash(sr, c);
      }
      fn >>= 1n; sn >>= 1n;
    }
    return equal(fr, root1) && equal(sr, root2) && sn === 0n;
  }

  // ---------------------------------------------------------------- receipts

  // The tree head of a C2SP signed note: origin, size, root, time (signature unchecked:
  // the server checks it against the key on chain).
  function parseCheckpoint(note) {
    var lines = String(note).split("\n\n")[0].split("\n");
    if (lines.length !== 4 || !/^\d+$/.test(lines[1]) || !/^time \d+$/.test(lines[3])) {
      throw new Error("the checkpoint is not a signed tree head");
    }
    var rootHash = b64decode(lines[2]);
    if (rootHash.length !== 32) { throw new Error("the checkpoint's root is not 32 bytes"); }
    return { origin: lines[0], size: BigInt(lines[1]), root: rootHash, time: Number(lines[3].slice(5)) };
  }

  // Recompute a receipt's path: {index, size, leaf, root (the checkpoint's), steps,
  // computed, matchesCheckpoint}. Throws with a readable message when it is not a receipt.
  async function checkReceipt(receipt) {
    if (!receipt || typeof receipt !== "object" || Array.isArray(receipt)) {
      throw new Error("a receipt is a JSON object with index, entry, checkpoint, inclusion_proof");
    }
    var index = receipt.index, entry = receipt.entry, proof = receipt.inclusion_proof;
    if (!Number.isInteger(index) || index < 0) { throw new Error("index must be a whole number from 0"); }
    if (typeof entry !== "string") { throw new Error("entry must be a string"); }
    if (!Array.isArray(proof)) { throw new Error("inclusion_proof must be a list of base64 hashes"); }
    var checkpoint = parseCheckpoint(receipt.checkpoint);
    var hashes = proof.map(b64decode);
    var leaf = await leafHash(new TextEncoder().encode(entry));
    var path = await inclusionPath(leaf, index, checkpoint.size, hashes);
    var computed = path === null ? null : path.root;
    return {
      index: index,
      size: checkpoint.size,
      leaf: leaf,
      root: checkpoint.root,
      steps: path === null ? [] : path.steps,
      computed: computed,
      matchesCheckpoint: computed !== null && equal(computed, checkpoint.root),
    };
  }

  // ---------------------------------------------------------------- drawing

  var SVG = "http://www.w3.org/2000/svg";

  function short(bytes) { return bytes ? hex(bytes).slice(0, 10) + "…" : "—"; }

  function el(doc, name, attrs, text) {
    var node = doc.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // Colours as SVG presentation attributes: the CSP allows no inline style.
  var FILL = { leaf: "#eef4ff", sibling: "#f4f5f7", inner: "#ffffff", match: "#dcfae6", mismatch: "#fee4e2" };
  var STROKE = { leaf: "#1f6feb", sibling: "#98a2b3", inner: "#5b6672", match: "#067647", mismatch: "#b42318" };

  function box(doc, svg, x, y, label, hash, kind) {
    svg.appendChild(el(doc, "rect", {
      x: x, y: y, width: 150, height: 34, rx: 4, fill: FILL[kind], stroke: STROKE[kind],
      "stroke-width": kind === "match" || kind === "mismatch" ? 2 : 1, "data-kind": kind,
    }));
    svg.appendChild(el(doc, "text", { x: x + 8, y: y + 14, "font-size": 11, fill: "#5b6672" }, label));
    svg.appendChild(el(doc, "text", { x: x + 8, y: y + 28, "font-size": 12, "font-family": "monospace" }, hash));
  }

  // The path as SVG, leaf at the bottom, root at the top: at each level the node so far
  // and its sibling, on the side the sibling joins; the root in green when it equals
  // ``anchoredRoot`` (or, with none, the checkpoint's root), in red when it does not.
  function drawPath(doc, result, anchoredRoot) {
    var levels = result.steps.length;
    var height = 60 + (levels + 1) * 52;
    var svg = el(doc, "svg", {
      viewBox: "0 0 520 " + height, width: 520, height: height, role: "img",
      "aria-label": "Merkle inclusion path of entry " + result.index,
    });
    var expected = anchoredRoot || result.root;
    var ok = result.computed !== null && equal(result.computed, expected);
    var y = height - 46, current = result.leaf;
    var leafKind = levels === 0 ? (ok ? "match" : "mismatch") : "leaf";
    box(doc, svg, 185, y, "entry " + result.index + " (leaf)", short(current), leafKind);
    result.steps.forEach(function (step, i) {
      var up = y - 52;
      var siblingX = step.side === "left" ? 20 : 350;
      box(doc, svg, siblingX, y, "sibling (" + step.side + ")", short(step.sibling), "sibling");
      svg.appendChild(el(doc, "line", { x1: 260, y1: y, x2: 260, y2: up + 34, stroke: "#5b6672" }));
      var sx = step.side === "left" ? 170 : 350;
      svg.appendChild(el(doc, "line", { x1: sx, y1: y + 17, x2: 260, y2: up + 34, stroke: "#98a2b3" }));
      var last = i === levels - 1;
      var kind = last ? (ok ? "match" : "mismatch") : "inner";
      box(doc, svg, 185, up, last ? "computed root" : "level " + (i + 1), short(step.hash), kind);
      y = up;
    });
    var label = (anchoredRoot ? "anchored root " : "checkpoint root ") + short(expected);
    svg.appendChild(el(doc, "text", {
      x: 185, y: 18, "font-size": 13, "font-weight": 600, fill: ok ? "#067647" : "#b42318",
      "data-verdict": ok ? "match" : "mismatch",
    }, (ok ? "✓ " : "✗ ") + label));
    return svg;
  }

  var api = {
    b64decode: b64decode, b64encode: b64encode, hex: hex, equal: equal,
    leafHash: leafHash, nodeHash: nodeHash, inclusionSides: inclusionSides,
    inclusionPath: inclusionPath, verifyInclusion: verifyInclusion,
    verifyConsistency: verifyConsistency, parseCheckpoint: parseCheckpoint,
    checkReceipt: checkReceipt, drawPath: drawPath,
  };
  root.AiledgerVerify = api;
  if (typeof module !== "undefined" && module.exports) { module.exports = api; }

  // ---------------------------------------------------------------- the /audit page

  if (typeof document === "undefined") { return; }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  function say(id, text, kind) {
    var node = document.getElementById(id);
    if (!node) { return; }
    node.textContent = text;
    if (kind) { node.className = kind; }
    node.hidden = false;
  }

  async function anchoredRootAt(url, node, size) {
    var query = node ? "?node=" + encodeURIComponent(node) : "";
    var response = await fetch(url + query, { credentials: "same-origin" });
    if (!response.ok) { return { root: null, latest: null }; }
    var data = await response.json();
    var latest = null, found = null;
    (data.anchors || []).forEach(function (a) {
      latest = a.size;
      if (BigInt(a.size) === size) { found = b64decode(a.root); }
    });
    return { root: found, latest: latest };
  }

  async function serverVerdict(url, receipt, node) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify({ receipt: receipt, node: node || null }),
    });
    var data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) { return { ok: false, failed: ["format"], checks: [], error: data.error || ("HTTP " + response.status) }; }
    return data;
  }

  function showServer(verdict) {
    var list = document.getElementById("server-checks");
    if (!list) { return; }
    list.textContent = "";
    if (verdict.error) {
      var item = document.createElement("li");
      item.className = "error";
      item.textContent = "refused: " + verdict.error;
      list.appendChild(item);
    }
    (verdict.checks || []).forEach(function (c) {
      var li = document.createElement("li");
      li.className = c.ok === true ? "ok" : c.ok === false ? "error" : "muted";
      li.textContent = (c.ok === true ? "✓ " : c.ok === false ? "✗ " : "… ") + c.name + ": " + c.detail;
      list.appendChild(li);
    });
  }

  async function verifyPasted(form) {
    var text = document.getElementById("receipt-text").value;
    var nodeField = document.getElementById("receipt-node");
    var node = nodeField && nodeField.value.trim() ? nodeField.value.trim() : "";
    var picture = document.getElementById("merkle-path");
    picture.textContent = "";
    say("verdict", "checking…", "muted");
    var receipt;
    try { receipt = JSON.parse(text); }
    catch (e) { say("verdict", "does not verify: the receipt is not JSON", "error"); return; }
    var server = serverVerdict(form.dataset.verifyUrl, receipt, node);
    var browserOk = false;
    try {
      var result = await checkReceipt(receipt);
      var anchored = await anchoredRootAt(form.dataset.anchorsUrl, node, result.size);
      picture.appendChild(drawPath(document, result, anchored.root));
      var expected = anchored.root || result.root;
      browserOk = result.computed !== null && equal(result.computed, expected);
      say("browser-check", browserOk
        ? (anchored.root ? "In this browser: the path leads to the root anchored on chain at size " + result.size + "."
                         : "In this browser: the path leads to the checkpoint's root; size " + result.size + " is not anchored on chain yet (latest anchor: " + (anchored.latest === null ? "none" : anchored.latest) + ").")
        : "In this browser: the path does NOT lead to the " + (anchored.root ? "anchored" : "checkpoint's") + " root.",
        browserOk ? "ok" : "error");
    } catch (e) {
      say("browser-check", "In this browser: " + e.message, "error");
    }
    var verdict = await server;
    showServer(verdict);
    var ok = browserOk && verdict.ok === true;
    say("verdict", ok ? "verified" : "does not verify" + (verdict.failed && verdict.failed.length ? " (" + verdict.failed.join(", ") + ")" : ""), ok ? "ok" : "error");
  }

  function hookUp() {
    var form = document.getElementById("receipt-form");
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      verifyPasted(form);
    });
    var file = document.getElementById("receipt-file");
    if (file) {
      file.addEventListener("change", function () {
        if (!file.files || !file.files[0]) { return; }
        if (file.files[0].size > 1 << 20) { say("verdict", "that file is over 1 MiB: not a receipt", "error"); return; }
        file.files[0].text().then(function (text) {
          document.getElementById("receipt-text").value = text;
        });
      });
    }
    // "Verify" buttons of the entries table put that entry's receipt in the form.
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("[data-receipt-url]") : null;
      if (!button) { return; }
      event.preventDefault();
      fetch(button.getAttribute("data-receipt-url"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          document.getElementById("receipt-text").value = JSON.stringify(data.receipt, null, 1);
          var nodeField = document.getElementById("receipt-node");
          // a receipt this home holds is of its owner's log: check it against that node
          if (nodeField) { nodeField.value = data.owner || button.getAttribute("data-node") || ""; }
          form.scrollIntoView();
          verifyPasted(form);
        });
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", hookUp); }
  else { hookUp(); }
})(globalThis);
