// charforge's generation in the browser: the model's forward pass over Float32Array weights
// (sums in double), charforge's built-in samplers as its kernel draws them, and numpy's
// default_rng (SeedSequence + PCG64), so a seed gives `charforge generate --seed`'s text.
"use strict";

const U32 = (x) => x >>> 0;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
const PCG_MULT = (0x2360ED051FC65DA4n << 64n) | 0x4385DF649FCCF645n;

// numpy.random.SeedSequence(seed).generate_state(n32, uint32)
function seedWords(seed, n32) {
  const INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded;
  const MIX_L = 0xca01f9dd, MIX_R = 0x4973f715, POOL = 4;
  let s = BigInt(seed);
  const entropy = [];
  do { entropy.push(Number(s & 0xffffffffn)); s >>= 32n; } while (s > 0n);
  let hc = INIT_A;
  const hashmix = (value) => {
    value = U32(value ^ hc);
    hc = U32(Math.imul(hc, MULT_A));
    value = U32(Math.imul(value, hc));
    return U32(value ^ (value >>> 16));
  };
  const mix = (x, y) => {
    const r = U32(Math.imul(MIX_L, x) - Math.imul(MIX_R, y));
    return U32(r ^ (r >>> 16));
  };
  const pool = [];
  for (let i = 0; i < POOL; i++) pool.push(hashmix(i < entropy.length ? entropy[i] : 0));
  for (let src = 0; src < POOL; src++)
    for (let dst = 0; dst < POOL; dst++)
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  for (let src = POOL; src < entropy.length; src++)
    for (let dst = 0; dst < POOL; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  let hb = INIT_B;
  const out = [];
  for (let i = 0; i < n32; i++) {
    let v = U32(pool[i % POOL] ^ hb);
    hb = U32(Math.imul(hb, MULT_B));
    v = U32(Math.imul(v, hb));
    out.push(U32(v ^ (v >>> 16)));
  }
  return out;
}

// numpy.random.default_rng(seed): PCG64 (XSL-RR output), random() = 53 bits / 2^53
class Rng {
  constructor(seed) {
    const w = seedWords(seed, 8).map(BigInt);
    const u64 = (k) => w[2 * k] | (w[2 * k + 1] << 32n);
    const initstate = (u64(0) << 64n) | u64(1), initseq = (u64(2) << 64n) | u64(3);
    this.inc = ((initseq << 1n) | 1n) & MASK128;
    this.state = 0n;
    this.step();
    this.state = (this.state + initstate) & MASK128;
    this.step();
  }
  step() { this.state = (this.state * PCG_MULT + this.inc) & MASK128; }
  next64() {
    this.step();
    const hi = this.state >> 64n, x = (hi ^ this.state) & MASK64, rot = hi >> 58n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & MASK64;
  }
  random() { return Number(this.next64() >> 11n) / 9007199254740992; }
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

// The network: weights decoded to Float32Array at load (fp32, fp16 or int8 per-row scaled)
class Net {
  constructor(meta, bytes) {
    this.meta = meta;
    this.cell = meta.settings.cell;
    this.L = meta.settings.layers; this.H = meta.settings.hidden; this.V = meta.vocabulary.length;
    this.w = {};
    for (const t of meta.tensors) this.w[t.name] = decode(t, bytes);
  }
  zeroState() {
    const s = [];
    for (let l = 0; l < this.L; l++)
      s.push({h: new Float64Array(this.H), c: new Float64Array(this.H)});
    return s;
  }
  // one step: the input token through every layer; returns the logits (Float64Array)
  step(token, state) {
    const H = this.H, w = this.w;
    let x;
    const emb = w["embedding.weight"];
    if (emb) { const E = emb.cols; x = new Float64Array(E); for (let k = 0; k < E; k++) x[k] = emb.data[token * E + k]; }
    else { x = new Float64Array(this.V); x[token] = 1; }
    for (let l = 0; l < this.L; l++) {
      const p = (n) => w[`rnn.${n}_l${l}`];
      const wih = p("weight_ih"), whh = p("weight_hh");
      const gates = wih.rows;
      const gi = matvec(wih, x, emb || l > 0 ? null : token);
      const gh = matvec(whh, state[l].h, null);
      const bi = p("bias_ih"), bh = p("bias_hh");
      for (let j = 0; j < gates; j++) { gi[j] += bi.data[j]; gh[j] += bh.data[j]; }
      const h = new Float64Array(H), c = state[l].c;
      if (this.cell === "lstm") {
        for (let j = 0; j < H; j++) {
          const i = sigmoid(gi[j] + gh[j]), f = sigmoid(gi[H + j] + gh[H + j]);
          const g = Math.tanh(gi[2 * H + j] + gh[2 * H + j]);
          const o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
          c[j] = f * c[j] + i * g;
          h[j] = o * Math.tanh(c[j]);
        }
      } else if (this.cell === "gru") {
        const hp = state[l].h;
        for (let j = 0; j < H; j++) {
          const r = sigmoid(gi[j] + gh[j]), z = sigmoid(gi[H + j] + gh[H + j]);
          const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
          h[j] = (1 - z) * n + z * hp[j];
        }
      } else {
        for (let j = 0; j < H; j++) h[j] = Math.tanh(gi[j] + gh[j]);
      }
      state[l].h = h;
      x = h;
    }
    const logits = matvec(w["out.weight"], x, null);
    const bo = w["out.bias"].data;
    for (let j = 0; j < logits.length; j++) logits[j] += bo[j];
    return logits;
  }
}

function decode(t, bytes) {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const rows = t.shape.length > 1 ? t.shape[0] : 1, cols = n / rows;
  const data = new Float32Array(n);
  if (t.dtype === "float32") {
    data.set(new Float32Array(bytes.buffer.slice(t.offset, t.offset + 4 * n)));
  } else if (t.dtype === "float16") {
    const h = new Uint16Array(bytes.buffer.slice(t.offset, t.offset + 2 * n));
    for (let i = 0; i < n; i++) data[i] = half(h[i]);
  } else {                                   // int8 with one float32 scale per row
    const q = new Int8Array(bytes.buffer.slice(t.offset, t.offset + n));
    const s = new Float32Array(bytes.buffer.slice(t.scales, t.scales + 4 * rows));
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < cols; k++) data[r * cols + k] = q[r * cols + k] * s[r];
  }
  return {data, rows, cols};
}

function half(b) {
  const sign = b & 0x8000 ? -1 : 1, e = (b >> 10) & 0x1f, m = b & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

// out = W x (a one-hot x: the column `onehot`)
function matvec(W, x, onehot) {
  const out = new Float64Array(W.rows), K = W.cols, d = W.data;
  if (onehot !== null) { for (let r = 0; r < W.rows; r++) out[r] = d[r * K + onehot]; return out; }
  let r = 0;
  for (; r + 4 <= W.rows; r += 4) {          // four rows share each read of x
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const o0 = r * K, o1 = o0 + K, o2 = o1 + K, o3 = o2 + K;
    for (let k = 0; k < K; k++) {
      const xv = x[k];
      a0 += d[o0 + k] * xv; a1 += d[o1 + k] * xv; a2 += d[o2 + k] * xv; a3 += d[o3 + k] * xv;
    }
    out[r] = a0; out[r + 1] = a1; out[r + 2] = a2; out[r + 3] = a3;
  }
  for (; r < W.rows; r++) {
    let a = 0;
    const o = r * K;
    for (let k = 0; k < K; k++) a += d[o + k] * x[k];
    out[r] = a;
  }
  return out;
}

// charforge's built-in samplers, as its kernel draws (weights relative to the top logit, a
// floor relative to the top weight, top-k then top-p thresholds on the weights)
const SAMPLERS = {
  argmax: {params: {}, knobs: () => ({greedy: true})},
  temperature: {params: {temperature: 0.8}, knobs: (p) => ({scale: 1 / p.temperature})},
  sharpened: {params: {alpha: 2.0, floor: 0.0}, knobs: (p) => ({scale: p.alpha, floor: p.floor})},
  top_k: {params: {k: 10, temperature: 1.0}, knobs: (p) => ({scale: 1 / p.temperature, topK: p.k})},
  top_p: {params: {p: 0.9, temperature: 1.0}, knobs: (p) => ({scale: 1 / p.temperature, topP: p.p})},
};

function weights(logits, allowed, knobs) {
  const V = logits.length;
  let best = -1;
  for (let j = 0; j < V; j++) if (allowed[j] && (best < 0 || logits[j] > logits[best])) best = j;
  const scale = knobs.scale ?? 1, floor = knobs.floor ?? 0, topK = knobs.topK ?? 0;
  const topP = knobs.topP ?? 1;
  const p = new Float64Array(V);
  let total = 0, kept = 0;
  for (let j = 0; j < V; j++) {
    const e = Math.exp((logits[j] - logits[best]) * scale);
    p[j] = allowed[j] && e >= floor ? e : 0;
    if (p[j] > 0) kept++;
    total += p[j];
  }
  if ((topK > 0 && topK < kept) || topP < 1) {
    const sorted = Array.from(p).sort((a, b) => b - a);
    let thr = topK > 0 && topK < kept ? sorted[topK - 1] : 0;
    if (topP < 1) {
      let acc = 0;
      for (const v of sorted) { acc += v; if (acc >= topP * total) { if (v > thr) thr = v; break; } }
    }
    total = 0;
    for (let j = 0; j < V; j++) { if (p[j] < thr) p[j] = 0; total += p[j]; }
  }
  return {p, total, best};
}

function pick(logits, allowed, knobs, u) {
  const {p, total, best} = weights(logits, allowed, knobs);
  if (knobs.greedy) return best;
  const target = u * total;
  let acc = 0, last = -1;
  for (let j = 0; j < p.length; j++) {
    if (p[j] > 0) { acc += p[j]; last = j; if (target < acc) return j; }
  }
  return last;
}

// The next character's probabilities after a text, as a sampler draws them
function nextDistribution(net, ids, sampler, params) {
  const state = net.zeroState();
  let logits = null;
  for (const id of ids) logits = net.step(id, state);
  const knobs = SAMPLERS[sampler].knobs(params);
  if (knobs.greedy) { const out = new Float64Array(logits.length); out[weights(logits, net.meta.allowed, {}).best] = 1; return out; }
  const {p, total} = weights(logits, net.meta.allowed, knobs);
  return p.map((v) => v / total);
}

// A generation: primes' ids, then `length` characters drawn with `seed`'s stream; yields
// pieces of text so the page can stream them and stop
function* generate(net, ids, length, sampler, params, seed) {
  const meta = net.meta, knobs = SAMPLERS[sampler].knobs(params);
  const rng = new Rng(seed), state = net.zeroState();
  let logits = null;
  for (const id of ids) logits = net.step(id, state);
  for (let n = 0; n < length; n++) {
    const tok = pick(logits, meta.allowed, knobs, rng.random());
    if (tok < 0 || tok === meta.eos_id) return;
    yield meta.vocabulary[tok];
    logits = net.step(tok, state);
  }
}

function encodePrime(meta, prime) {
  const ids = [], unseen = new Set();
  for (const ch of prime) {
    const i = meta.index[ch];
    if (i === undefined) unseen.add(ch); else ids.push(i);
  }
  if (unseen.size) throw new Error(`the prime has characters this model never saw: ${[...unseen].map((c) => JSON.stringify(c)).join(", ")}`);
  if (meta.eos_id !== null) ids.unshift(meta.eos_id);
  if (!ids.length) ids.push(meta.index["\n"]);
  return ids;
}

function loadModel() {
  const meta = window.CHARFORGE_MODEL.meta;
  const raw = atob(window.CHARFORGE_MODEL.weights);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  meta.index = {};
  meta.vocabulary.forEach((t, i) => { if (t.length === 1) meta.index[t] = i; });
  return new Net(meta, bytes);
}

window.charforge = {Rng, Net, SAMPLERS, generate, nextDistribution, encodePrime, loadModel};
