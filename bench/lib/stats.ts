// Percentiles and a latency summary, for benchmark reports.
import { seededRandom } from "./random.ts";

export interface Summary {
	count: number;
	min: number;
	p50: number;
	p95: number;
	p99: number;
	max: number;
	mean: number;
}

/** Nearest-rank percentile (0 < p ≤ 100) of values sorted ascending; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
	if (sorted.length === 0) return Number.NaN;
	const rank = Math.ceil((p / 100) * sorted.length);
	return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export function summarize(values: readonly number[]): Summary {
	const sorted = [...values].sort((a, b) => a - b);
	const sum = sorted.reduce((total, value) => total + value, 0);
	return {
		count: sorted.length,
		min: sorted[0] ?? Number.NaN,
		p50: percentile(sorted, 50),
		p95: percentile(sorted, 95),
		p99: percentile(sorted, 99),
		max: sorted.at(-1) ?? Number.NaN,
		mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
	};
}

/**
 * A 95% bootstrap interval for the difference of two samples' medians (b − a): how far one run's
 * figure could move by chance alone, from 1,000 resamples (seeded, so a report is reproducible).
 */
export function medianDifferenceInterval(
	a: readonly number[],
	b: readonly number[],
	random = seededRandom(1),
): [number, number] {
	const resampledMedian = (values: readonly number[]) => {
		const resample = Array.from(
			{ length: values.length },
			() => values[Math.floor(random() * values.length)] as number,
		);
		return percentile(
			resample.sort((x, y) => x - y),
			50,
		);
	};
	const differences = Array.from({ length: 1_000 }, () => resampledMedian(b) - resampledMedian(a));
	differences.sort((x, y) => x - y);
	return [percentile(differences, 2.5), percentile(differences, 97.5)];
}

/** How many of each key, e.g. answers by status. */
export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const item of items) {
		const name = key(item);
		counts[name] = (counts[name] ?? 0) + 1;
	}
	return counts;
}
