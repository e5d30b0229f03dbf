// Drawing the item of a task: its image (already decoded when prefetched) or its audio (the
// waveform and player of lib/audio_stage.js), its text (in its own direction), and any other
// data as a short list.
import { audioStage, stopStage } from "./audio_stage.js";
import { t } from "./i18n.js";
import { isOnline } from "./net.js";

export function renderItem(root, entry, dataSpec) {
  stopStage(root);
  root.replaceChildren();
  const data = entry.task.data || {};
  const kinds = Object.keys(dataSpec || {}).length ? dataSpec : guessKinds(data, entry.task.media_url);
  let stage = null;
  const rest = [];
  for (const [key, kind] of Object.entries(kinds)) {
    const value = data[key];
    if (kind === "image" && !stage) {
      stage = imageStage(entry);
      root.append(stage.el);
    } else if (kind === "audio" && !stage && entry.task.media_url) {
      stage = audioStage(entry);
      root.append(stage.el);
    } else if (kind === "text" && typeof value === "string") {
      const div = document.createElement("div");
      div.className = "item-text";
      div.dir = "auto";
      div.textContent = value;
      root.append(div);
    } else if (value !== undefined && kind !== "image" && kind !== "audio") {
      rest.push([key, value]);
    }
  }
  if (!stage && entry.task.media_url && !Object.values(kinds).some((k) => k === "image" || k === "audio")) {
    // media without an image data key: still show it when it is one
    stage = imageStage(entry);
    root.append(stage.el);
  }
  if (rest.length) {
    const dl = document.createElement("dl");
    dl.className = "item-data";
    for (const [key, value] of rest) {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.dir = "auto";
      dd.textContent = typeof value === "string" ? value : JSON.stringify(value);
      dl.append(dt, dd);
    }
    root.append(dl);
  }
  return stage;
}

function guessKinds(data, mediaUrl) {
  const kinds = {};
  if (mediaUrl) kinds.__media = "image";
  for (const [key, value] of Object.entries(data)) kinds[key] = typeof value === "string" ? "text" : "json";
  return kinds;
}

function imageStage(entry) {
  const el = document.createElement("div");
  el.className = "stage";
  const stage = { el, img: null, width: entry.width, height: entry.height, ready: null };
  const place = (img) => {
    if (!img) {
      const p = document.createElement("p");
      p.className = "loading";
      p.textContent = isOnline() ? t("annotate.media_failed") : t("annotate.no_image");
      el.replaceChildren(p);
      return;
    }
    if (Math.max(img.naturalWidth, img.naturalHeight) < 200) img.classList.add("pixelated");
    stage.img = img;
    stage.width = entry.width || img.naturalWidth;
    stage.height = entry.height || img.naturalHeight;
    el.replaceChildren(img);
  };
  if (entry.img) {
    place(entry.img);
    stage.ready = Promise.resolve(stage);
  } else {
    const p = document.createElement("p");
    p.className = "loading";
    p.textContent = t("annotate.loading");
    el.append(p);
    stage.ready = (entry.ready || Promise.resolve()).then(() => { place(entry.img); return stage; });
  }
  return stage;
}
