// Playing an <audio> element by keys: play and pause, seek, play a range and stop at its end
// (replay a segment), speed from 0.5× to 2× (pitch kept). The playhead is kept here, to the
// millisecond, so that seeking and editing work before the audio has loaded, and offline.
export const RATES = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

const ms = (t) => Math.round(t * 1000) / 1000;

export class Transport {
  constructor(audio, duration) {
    this.audio = audio;
    this.duration = duration;
    this.pos = 0;
    this.until = null;
    this.listeners = new Set();
    this.frame = 0;
    this.failed = null;
    audio.preservesPitch = true;
    audio.addEventListener("play", () => this.loop());
    audio.addEventListener("pause", () => { this.pos = ms(audio.currentTime); this.emit(); });
    audio.addEventListener("ended", () => { this.pos = this.duration; this.until = null; this.emit(); });
    audio.addEventListener("loadedmetadata", () => {
      if (Math.abs(audio.currentTime - this.pos) > 0.001) audio.currentTime = this.pos;
    });
    audio.addEventListener("error", () => { this.failed = audio.error; this.emit(); });
  }

  get playing() { return !this.audio.paused && !this.audio.ended; }
  get time() { return this.playing ? ms(this.audio.currentTime) : this.pos; }
  get rate() { return this.audio.playbackRate; }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit() {
    for (const fn of this.listeners) fn(this);
  }

  seek(t) {
    this.pos = ms(Math.min(Math.max(0, t), this.duration));
    if (this.until !== null && this.pos >= this.until) this.until = null;
    if (this.audio.readyState >= 1) this.audio.currentTime = this.pos;
    this.emit();
  }

  // Play from `from` (default: the playhead) and stop at `until` (default: the end).
  play(from = null, until = null) {
    if (from !== null) this.seek(from);
    if (this.pos >= this.duration) this.seek(0);
    this.until = until;
    if (this.audio.readyState >= 1 && Math.abs(this.audio.currentTime - this.pos) > 0.001) {
      this.audio.currentTime = this.pos;
    }
    this.audio.play().catch((err) => { this.failed = err; this.emit(); });
  }

  pause() {
    this.audio.pause();
    this.until = null;
  }

  toggle() {
    if (this.playing) this.pause(); else this.play();
  }

  // One step slower (-1) or faster (+1) on the RATES scale.
  step(dir) {
    const now = this.audio.playbackRate;
    let i = RATES.findIndex((r) => r >= now - 1e-6);
    if (i < 0) i = RATES.length - 1;
    const next = RATES[Math.min(RATES.length - 1, Math.max(0, i + dir))];
    this.audio.playbackRate = next;
    this.audio.defaultPlaybackRate = next;
    this.emit();
    return next;
  }

  loop() {
    cancelAnimationFrame(this.frame);
    const tick = () => {
      if (!this.playing) return;
      if (!this.audio.isConnected) { this.audio.pause(); return; } // its task left the screen
      if (this.until !== null && this.audio.currentTime >= this.until) {
        const stop = this.until;
        this.audio.pause();
        this.until = null;
        this.seek(stop);
        return;
      }
      this.emit();
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  stop() {
    cancelAnimationFrame(this.frame);
    this.audio.pause();
    this.listeners.clear();
  }
}

// A time as m:ss.mmm (h:mm:ss.mmm from an hour on), e.g. 1:02.250.
export function clock(t) {
  const whole = Math.round(Math.max(0, t) * 1000);
  const h = Math.floor(whole / 3600000);
  const m = Math.floor(whole / 60000) % 60;
  const s = Math.floor(whole / 1000) % 60;
  const f = String(whole % 1000).padStart(3, "0");
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}.${f}` : `${m}:${ss}.${f}`;
}
