// Reads a value at a fixed interval (e.g. the mock provider's counters) to turn counts into rates.

export interface Sample<T> {
	/** performance.now() when it was read. */
	atMs: number;
	value: T;
}

export interface Sampler<T> {
	samples: Sample<T>[];
	/** Takes a last sample and stops; safe to call twice. */
	stop(): Sample<T>[];
}

/** Samples now and every intervalMs after, at most maxSamples times. */
export function startSampler<T>(read: () => T, intervalMs: number, maxSamples: number): Sampler<T> {
	const samples: Sample<T>[] = [];
	const take = () => samples.push({ atMs: performance.now(), value: read() });
	take();
	const timer = setInterval(() => {
		take();
		if (samples.length >= maxSamples) clearInterval(timer);
	}, intervalMs);
	let stopped = false;
	return {
		samples,
		stop() {
			if (!stopped) {
				stopped = true;
				clearInterval(timer);
				take();
			}
			return samples;
		},
	};
}
