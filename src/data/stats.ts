// Streaming per-channel mean/std over uint8 HWC images, in [0, 1] units (what torchvision's
// Normalize expects after ToTensor). Sums are kept as exact integers in doubles (below 2^53
// up to ~10^11 pixels per channel), so the result does not depend on image order.

export class ChannelStats {
  private readonly sum: number[];
  private readonly sumSq: number[];
  private pixels = 0;

  constructor(readonly channels: number) {
    this.sum = new Array<number>(channels).fill(0);
    this.sumSq = new Array<number>(channels).fill(0);
  }

  add(image: Uint8Array): void {
    const c = this.channels;
    if (image.length % c !== 0) throw new Error(`ChannelStats: ${image.length} bytes is not a multiple of ${c} channels`);
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      let sq = 0;
      for (let i = ch; i < image.length; i += c) {
        const v = image[i];
        s += v;
        sq += v * v;
      }
      this.sum[ch] += s;
      this.sumSq[ch] += sq;
    }
    this.pixels += image.length / c;
  }

  get count(): number {
    return this.pixels;
  }

  /** Population mean and std per channel, in [0, 1] units; zeros before any image. */
  result(): { mean: number[]; std: number[] } {
    if (this.pixels === 0) return { mean: this.sum.map(() => 0), std: this.sum.map(() => 0) };
    const mean = this.sum.map((s) => s / this.pixels);
    const std = this.sumSq.map((sq, ch) => Math.sqrt(Math.max(0, sq / this.pixels - mean[ch] * mean[ch])));
    return { mean: mean.map((m) => m / 255), std: std.map((s) => s / 255) };
  }
}
