import { bufferOfStream, patternBytes, patternStream, sha256OfStream } from './pattern.js';

describe('pattern', () => {
  it('gives the same bytes by stream and by random-access slice', async () => {
    const whole = await bufferOfStream(patternStream(200_000, 7));
    expect(whole.length).toBe(200_000);
    for (const [offset, length] of [
      [0, 1],
      [15, 2],
      [65_530, 100],
      [199_999, 1],
      [0, 200_000],
    ] as const) {
      expect(patternBytes(7, offset, length).equals(whole.subarray(offset, offset + length))).toBe(true);
    }
  });
  it('is deterministic per seed and differs between seeds', async () => {
    expect(await sha256OfStream(patternStream(1000, 1))).toBe(await sha256OfStream(patternStream(1000, 1)));
    expect(await sha256OfStream(patternStream(1000, 1))).not.toBe(
      await sha256OfStream(patternStream(1000, 2)),
    );
    expect(await sha256OfStream(patternStream(0, 1))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});
