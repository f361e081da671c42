// sbvae explore: the page. It keeps the latents; the server decodes them.
//
// A slot is one row of sliders: the first run's latent (highest KL first) and, for every other
// run, the latent paired with it (same most informative factor) and the sign it moves with.
// Moving a slot's slider sets an offset; every run's latent becomes its starting value plus
// sign * offset. One decode request is in flight at a time; moves made meanwhile are sent
// together as soon as it returns, so the images follow the slider without a queue building up.
"use strict";

const SWEEP_FROM = -2;
const SWEEP_TO = 2;
const SWEEP_STEPS = 41;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  info: null,
  starts: [], // per run: the starting latents (posterior mean or prior draw)
  offsets: [], // per slot
  inflight: false,
  pending: false,
  waiters: [],
  sweepToken: 0,
  sweeping: false, // a sweep is playing (set back when it ends or another move stops it)
  decodes: 0, // decodings shown so far (the browser test waits on it)
};

function $(selector, root = document) {
  return root.querySelector(selector);
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function status(text, error = false) {
  const line = $("#status");
  line.textContent = text;
  line.classList.toggle("error", error);
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

// ------------------------------------------------------------------ latents

function currentLatents() {
  const { runs, slots } = state.info;
  return runs.map((run, j) => {
    const z = state.starts[j].slice();
    slots.forEach((slot, s) => {
      const dim = slot.dims[j];
      if (dim !== null && dim !== undefined) z[dim] = state.starts[j][dim] + slot.signs[j] * state.offsets[s];
    });
    return z;
  });
}

function requestDecode() {
  // Resolves once the images show the latents as they are now.
  const done = new Promise((resolve) => state.waiters.push(resolve));
  updateMarkers();
  if (state.inflight) state.pending = true;
  else sendDecode();
  return done;
}

async function sendDecode() {
  state.inflight = true;
  state.pending = false;
  const waiters = state.waiters.splice(0);
  const started = performance.now();
  try {
    const answer = await api("/api/decode", { latents: currentLatents() });
    answer.images.forEach((url, j) => {
      if (url) $(`.run[data-run="${j}"] img.decoded`).src = url;
    });
    state.decodes += 1;
    document.body.dataset.decodes = String(state.decodes);
    status(`decoded in ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    status(error.message, true);
  }
  state.inflight = false;
  if (state.pending) {
    state.waiters.unshift(...waiters);
    sendDecode();
  } else {
    waiters.forEach((resolve) => resolve());
  }
}

function setOffset(s, value) {
  state.offsets[s] = value;
  const slider = $(`input.latent[data-slot="${s}"]`);
  slider.value = String(value);
  showOffset(s);
}

function showOffset(s) {
  const slot = state.info.slots[s];
  const z0 = state.starts.length ? state.starts[0][slot.dims[0]] + state.offsets[s] : 0;
  const sign = state.offsets[s] >= 0 ? "+" : "−";
  $(`output[data-slot="${s}"]`).textContent = `${sign}${Math.abs(state.offsets[s]).toFixed(2)} (z = ${z0.toFixed(2)})`;
}

function stopSweep() {
  state.sweepToken += 1;
  state.sweeping = false;
}

function resetOffsets() {
  stopSweep();
  state.info.slots.forEach((_, s) => setOffset(s, 0));
}

async function sweep(s) {
  const token = ++state.sweepToken;
  const before = state.offsets[s];
  state.sweeping = true;
  for (let i = 0; i < SWEEP_STEPS; i += 1) {
    if (token !== state.sweepToken) return; // another move took over
    setOffset(s, SWEEP_FROM + ((SWEEP_TO - SWEEP_FROM) * i) / (SWEEP_STEPS - 1));
    await Promise.all([requestDecode(), new Promise((resolve) => setTimeout(resolve, 40))]);
  }
  if (token === state.sweepToken) {
    setOffset(s, before);
    await requestDecode();
    state.sweeping = false;
  }
}

// ------------------------------------------------------------------ geometry plot

function geometryPlot(run, j) {
  const g = run.geometry;
  const size = 220;
  const pad = 28;
  const xs = g.lines.flat().map((p) => p[0]);
  const ys = g.lines.flat().map((p) => p[1]);
  const span = (values) => {
    const low = Math.min(...values);
    const high = Math.max(...values);
    const margin = Math.max(0.15 * (high - low), 0.2);
    return [low - margin, high + margin];
  };
  const [x0, x1] = span(xs);
  const [y0, y1] = span(ys);
  const px = (x) => pad + ((x - x0) / (x1 - x0)) * (size - pad - 6);
  const py = (y) => size - pad - ((y - y0) / (y1 - y0)) * (size - pad - 6);
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  g.lines.forEach((line, l) => {
    const polyline = document.createElementNS(SVG_NS, "polyline");
    polyline.setAttribute("points", line.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" "));
    polyline.setAttribute("fill", "none");
    polyline.setAttribute("stroke", g.colours[l]);
    polyline.setAttribute("stroke-width", "1.3");
    polyline.setAttribute("opacity", g.inside[l].every(Boolean) ? "0.85" : "0.35");
    svg.appendChild(polyline);
  });
  const label = (text, x, y, rotate) => {
    const node = document.createElementNS(SVG_NS, "text");
    node.setAttribute("x", x);
    node.setAttribute("y", y);
    node.setAttribute("font-size", "11");
    node.setAttribute("text-anchor", "middle");
    node.setAttribute("fill", "#444");
    if (rotate) node.setAttribute("transform", `rotate(-90 ${x} ${y})`);
    node.textContent = text;
    svg.appendChild(node);
  };
  label(`z${g.dims[0]} (${g.factors[0]})`, (size + pad) / 2, size - 8, false);
  label(`z${g.dims[1]} (${g.factors[1]})`, 12, (size - pad) / 2, true);
  const marker = document.createElementNS(SVG_NS, "circle");
  marker.setAttribute("r", "6");
  marker.setAttribute("fill", "#e00");
  marker.setAttribute("stroke", "#000");
  marker.setAttribute("stroke-width", "1.5");
  marker.classList.add("marker");
  svg.appendChild(marker);
  const place = (z) => {
    const x = z[g.dims[0]];
    const y = z[g.dims[1]];
    const inside = x >= x0 && x <= x1 && y >= y0 && y <= y1;
    marker.setAttribute("cx", px(Math.min(Math.max(x, x0), x1)).toFixed(1));
    marker.setAttribute("cy", py(Math.min(Math.max(y, y0), y1)).toFixed(1));
    marker.setAttribute("fill", inside ? "#e00" : "none");
  };
  const box = element("div", { class: "geometry" });
  box.appendChild(svg);
  box.appendChild(
    element(
      "div",
      { class: "caption" },
      `latent geometry: posterior means of a grid of ${g.factors[0]} × ${g.factors[1]} (MI ${g.mi[0]}, ${g.mi[1]}); ` +
        "red dot: the current latents (hollow at the edge when outside the plot)",
    ),
  );
  return { box, place, run: j };
}

function updateMarkers() {
  if (!state.starts.length) return;
  const latents = currentLatents();
  state.plots.forEach((plot) => plot.place(latents[plot.run]));
}

// ------------------------------------------------------------------ building the page

function buildRuns() {
  const holder = $("#run-views");
  state.plots = [];
  state.info.runs.forEach((run, j) => {
    const box = element("div", { class: "run", "data-run": String(j) });
    box.appendChild(element("h3", {}, `${run.name} — ${run.data} ${run.image_size}px`));
    const images = element("div", { class: "images" });
    for (const [kind, caption] of [["reconstruction", "reconstruction"], ["decoded", "current decoding"]]) {
      const figure = element("figure");
      figure.appendChild(element("img", { class: `pixels ${kind}`, alt: `${run.name} ${caption}` }));
      figure.appendChild(element("figcaption", {}, caption));
      images.appendChild(figure);
    }
    const body = element("div", { class: "body" });
    body.appendChild(images);
    if (run.geometry) {
      const plot = geometryPlot(run, j);
      state.plots.push(plot);
      body.appendChild(plot.box);
    }
    box.appendChild(body);
    holder.appendChild(box);
  });
}

function latentText(run, dim) {
  const carries = run.carries && run.carries[dim];
  const factor = carries ? ` · ${carries.factor} (MI ${carries.mi.toFixed(2)})` : "";
  return `z${dim} KL ${run.kl[dim].toFixed(2)}${factor}`;
}

function buildLatents() {
  const body = $("#latents tbody");
  const { runs, slots } = state.info;
  state.offsets = slots.map(() => 0);
  slots.forEach((slot, s) => {
    const first = slot.dims[0];
    const row = element("tr", { "data-slot": String(s) });
    if (!runs[0].active[first]) row.classList.add("inactive");
    const label = element("td", { class: "label" });
    label.appendChild(element("div", {}, `${runs[0].name}: ${latentText(runs[0], first)}`));
    if (!runs[0].active[first]) label.firstChild.appendChild(element("span", { class: "tag" }, "inactive"));
    runs.slice(1).forEach((run, i) => {
      const dim = slot.dims[i + 1];
      const text = dim === null ? "no latent" : `${slot.signs[i + 1] < 0 ? "−" : ""}${latentText(run, dim)}`;
      label.appendChild(element("div", { class: "other" }, `${run.name}: ${text}`));
    });
    row.appendChild(label);
    const cell = element("td");
    const slider = element("input", {
      type: "range",
      class: "latent",
      min: "-3",
      max: "3",
      step: "0.01",
      value: "0",
      "data-slot": String(s),
      "aria-label": `offset of latent z${first}`,
    });
    slider.addEventListener("input", () => {
      stopSweep();
      state.offsets[s] = Number(slider.value);
      showOffset(s);
      requestDecode();
    });
    cell.appendChild(slider);
    cell.appendChild(element("output", { "data-slot": String(s) }));
    row.appendChild(cell);
    const play = element("button", { type: "button", class: "sweep", "data-slot": String(s) }, "▶ sweep −2…+2");
    play.addEventListener("click", () => sweep(s));
    const reset = element("button", { type: "button", class: "reset", "data-slot": String(s) }, "reset");
    reset.addEventListener("click", () => {
      stopSweep();
      setOffset(s, 0);
      requestDecode();
    });
    row.appendChild(element("td")).appendChild(play);
    row.appendChild(element("td")).appendChild(reset);
    body.appendChild(row);
    showOffset(s);
  });
}

function buildFactors() {
  const holder = $("#factors");
  for (const factor of state.info.factors) {
    const box = element("label", { class: "factor" });
    box.appendChild(element("span", { class: "name" }, factor.name));
    let control;
    if (factor.kind === "discrete") {
      control = element("select", { "data-factor": factor.name });
      factor.values.forEach((value, i) => control.appendChild(element("option", { value: String(value) }, factor.labels[i])));
    } else {
      const step = (factor.high - factor.low) / 100;
      control = element("input", {
        type: "range",
        min: String(factor.low),
        max: String(factor.high - step / 2),
        step: String(step),
        "data-factor": factor.name,
      });
    }
    const shown = element("output", { "data-factor": factor.name });
    control.addEventListener("input", () => {
      if (factor.kind !== "discrete") shown.textContent = Number(control.value).toFixed(2);
    });
    control.addEventListener("change", () => startFrom("factors"));
    box.appendChild(control);
    box.appendChild(shown);
    holder.appendChild(box);
  }
}

function factorValues() {
  const values = {};
  for (const factor of state.info.factors) values[factor.name] = Number($(`[data-factor="${factor.name}"]`).value);
  return values;
}

function showFactors(values, texts) {
  for (const factor of state.info.factors) {
    const control = $(`[data-factor="${factor.name}"]`);
    const value = values[factor.name];
    if (factor.kind === "discrete") {
      let best = 0;
      factor.values.forEach((v, i) => {
        if (Math.abs(v - value) < Math.abs(factor.values[best] - value)) best = i;
      });
      control.value = String(factor.values[best]);
    } else {
      control.value = String(value);
    }
    $(`output[data-factor="${factor.name}"]`).textContent = factor.kind === "discrete" ? "" : texts[factor.name];
  }
}

async function startFrom(mode) {
  const seed = Math.max(0, Math.floor(Number($("#seed").value) || 0));
  const body = { mode, seed };
  if (mode === "factors") body.values = factorValues();
  let answer;
  try {
    answer = await api("/api/start", body);
  } catch (error) {
    status(error.message, true);
    return;
  }
  stopSweep();
  state.starts = answer.runs.map((run) => run.mean);
  $("#input").src = answer.input || "";
  $("#input-view").style.visibility = answer.input ? "visible" : "hidden";
  answer.runs.forEach((run, j) => {
    const recon = $(`.run[data-run="${j}"] img.reconstruction`);
    recon.src = run.reconstruction || "";
    recon.parentElement.style.visibility = run.reconstruction ? "visible" : "hidden";
  });
  if (answer.values) showFactors(answer.values, answer.text);
  $("#inside-note").textContent =
    answer.inside === false ? "These factor values lie outside the training data: the models extrapolate." : "";
  document.body.dataset.start = mode;
  resetOffsets();
  await requestDecode();
}

async function main() {
  try {
    state.info = await api("/api/info");
  } catch (error) {
    status(`cannot load the runs: ${error.message}`, true);
    return;
  }
  const { runs } = state.info;
  $("#runs-line").textContent = runs.map((r) => `${r.name} (${r.active.filter(Boolean).length} of ${r.latent_dim} latents active)`).join(" · ");
  buildRuns();
  buildLatents();
  buildFactors();
  if (!state.info.factors.length) $("#factors").textContent = "This data has no ground-truth factors.";
  $("#random-sample").addEventListener("click", () => {
    $("#seed").value = String(Math.floor(Math.random() * 1e6));
    startFrom("random");
  });
  $("#seed").addEventListener("change", () => startFrom("random"));
  $("#prior-draw").addEventListener("click", () => startFrom("prior"));
  $("#reset-all").addEventListener("click", () => {
    resetOffsets();
    requestDecode();
  });
  await startFrom("random");
  document.body.dataset.ready = "true";
}

main();
