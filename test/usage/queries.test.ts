// The README's Analytics Engine queries checked against recorded data points: requests are written
// through the real sink, read back as the SQL API sees them (blobN, doubleN, _sample_interval), and
// each query's expressions, term by term, must give what happened.
import { describe, expect, it } from "vitest";
import { AnalyticsEngineSink, type UsageRecord } from "../../src/usage/record.ts";

/** One data point as the SQL API reads it. */
type Row = Record<string, string | number>;

/** Writes `records` through the sink and returns the rows, each kept once in `sampleInterval`. */
function rowsOf(records: { record: UsageRecord; sampleInterval?: number }[]): Row[] {
	const rows: Row[] = [];
	for (const { record, sampleInterval = 1 } of records) {
		const dataset = {
			writeDataPoint(point: AnalyticsEngineDataPoint) {
				const row: Row = { _sample_interval: sampleInterval };
				(point.indexes ?? []).forEach((value, i) => {
					row[`index${i + 1}`] = String(value);
				});
				(point.blobs ?? []).forEach((value, i) => {
					row[`blob${i + 1}`] = String(value);
				});
				(point.doubles ?? []).forEach((value, i) => {
					row[`double${i + 1}`] = value;
				});
				rows.push(row);
			},
		};
		new AnalyticsEngineSink(dataset as unknown as AnalyticsEngineDataset).write(record);
	}
	return rows;
}

function record(fields: Partial<UsageRecord>): UsageRecord {
	return {
		tenant: "team-a",
		pool: "openai",
		model: "gpt-4o-mini",
		priority: "normal",
		outcome: "ok",
		cause: "ok",
		status: 200,
		promptTokens: 100,
		completionTokens: 20,
		queueMs: 0,
		upstreamMs: 300,
		attempts: 1,
		retriesAfterRateLimit: 0,
		retriesAfterFailure: 0,
		cachedInputTokens: 0,
		reasoningTokens: 0,
		...fields,
	};
}

const sum = (rows: Row[], term: (row: Row) => number) =>
	rows.reduce((total, row) => total + Number(row._sample_interval) * term(row), 0);
const num = (row: Row, column: string) => Number(row[column] ?? 0);

// One hour of one pool, as the gateway would record it.
const hour = rowsOf([
	// Answered on the first send; this one stands for 3 requests (sampled).
	{ record: record({}), sampleInterval: 3 },
	// Answered after one provider 429 and its resend.
	{ record: record({ attempts: 2, retriesAfterRateLimit: 1 }) },
	// Answered after a 503 and its resend.
	{ record: record({ attempts: 2, retriesAfterFailure: 1 }) },
	// The provider kept answering 429: 3 sends, 2 resends, the caller got tollbooth's 429.
	{
		record: record({
			outcome: "rejected",
			cause: "provider_rate_limited",
			status: 429,
			attempts: 3,
			retriesAfterRateLimit: 2,
			promptTokens: 100,
			completionTokens: 0,
		}),
	},
	// Refused by its deadline without a send: 429, 0 attempts.
	{
		record: record({
			outcome: "rejected",
			cause: "deadline",
			status: 429,
			attempts: 0,
			upstreamMs: 0,
			completionTokens: 0,
		}),
	},
	// Cached prompt and reasoning tokens.
	{ record: record({ promptTokens: 2000, cachedInputTokens: 1500, reasoningTokens: 12 }) },
]);

describe("the schema", () => {
	it("puts each field in its documented column", () => {
		const [row] = rowsOf([
			{
				record: record({
					status: 200,
					attempts: 4,
					retriesAfterRateLimit: 2,
					retriesAfterFailure: 1,
					cachedInputTokens: 64,
					reasoningTokens: 8,
					queueMs: 12,
					upstreamMs: 340,
				}),
			},
		]);
		expect(row).toEqual({
			_sample_interval: 1,
			index1: "team-a",
			blob1: "team-a",
			blob2: "openai",
			blob3: "gpt-4o-mini",
			blob4: "ok",
			blob5: "normal",
			blob6: "ok",
			double1: 200,
			double2: 100,
			double3: 20,
			double4: 12,
			double5: 340,
			double6: 3,
			double7: 4,
			double8: 2,
			double9: 1,
			double10: 64,
			double11: 8,
		});
	});
});

describe("usage per tenant per day", () => {
	it("weights every count by _sample_interval", () => {
		expect(sum(hour, () => 1)).toBe(8);
		// prompt: 3×100 (sampled) + 100 + 100 + 100 + 100 + 2000
		expect(sum(hour, (row) => num(row, "double2"))).toBe(2700);
		expect(sum(hour, (row) => num(row, "double10"))).toBe(1500);
		// completion: 3×20 + 20 + 20 + 0 + 0 + 20
		expect(sum(hour, (row) => num(row, "double3"))).toBe(120);
		expect(sum(hour, (row) => num(row, "double11"))).toBe(12);
	});
});

describe("429s and resends per pool per hour", () => {
	it("provider_429_share: 429 answers of all sends, the last 429 of a request that gave up included", () => {
		// Sends: 3×1 + 2 + 2 + 3 + 0 + 1 = 11. Provider 429s: 1 + 3 (two resent, the last passed on).
		const provider429s = sum(
			hour,
			(row) => num(row, "double8") + (row.blob6 === "provider_rate_limited" ? 1 : 0),
		);
		const sends = sum(hour, (row) => num(row, "double7"));
		expect(sends).toBe(11);
		expect(provider429s / sends).toBeCloseTo(4 / 11, 10);
	});

	it("caller_429_share: of all requests, deadline refusals (0 sends) included", () => {
		const caller429s = sum(hour, (row) => (num(row, "double1") === 429 ? 1 : 0));
		expect(caller429s / sum(hour, () => 1)).toBe(2 / 8);
	});

	it("resends per request by cause: after a 429, after a failure, and all of them", () => {
		const requests = sum(hour, () => 1);
		expect(sum(hour, (row) => num(row, "double8")) / requests).toBe(3 / 8);
		expect(sum(hour, (row) => num(row, "double9")) / requests).toBe(1 / 8);
		// double6 counts every resend: the two causes together.
		expect(sum(hour, (row) => num(row, "double6"))).toBe(4);
	});
});

describe("batch lines (blob5 = 'background')", () => {
	const line = (fields: Partial<UsageRecord>) => record({ priority: "background", ...fields });
	// The same hour with a batch running: two lines answered, one answered 429 by the provider (it
	// goes back through the queue), one refused by its tenant's budget without a send.
	const withLines = [
		...hour,
		...rowsOf([
			{ record: line({}), sampleInterval: 2 },
			{
				record: line({
					outcome: "provider_error",
					cause: "provider_rate_limited",
					status: 429,
					completionTokens: 0,
				}),
			},
			{
				record: line({
					outcome: "rejected",
					cause: "budget_exhausted",
					status: 429,
					attempts: 0,
					promptTokens: 0,
					completionTokens: 0,
				}),
			},
		]),
	];
	const interactive = (row: Row) => row.blob5 !== "background";

	it("count in usage: their tokens are the tenant's", () => {
		expect(sum(withLines, (row) => num(row, "double2"))).toBe(2700 + 2 * 100 + 100);
		expect(sum(withLines, (row) => num(row, "double3"))).toBe(120 + 2 * 20);
	});

	it("count in provider_429_share: their sends and the provider's 429s to them", () => {
		const provider429s = sum(
			withLines,
			(row) => num(row, "double8") + (row.blob6 === "provider_rate_limited" ? 1 : 0),
		);
		expect(provider429s / sum(withLines, (row) => num(row, "double7"))).toBeCloseTo(5 / 14, 10);
	});

	it("are left out of the callers' figures, which stay those of interactive requests", () => {
		const requests = sum(withLines, (row) => (interactive(row) ? 1 : 0));
		const caller429s = sum(withLines, (row) =>
			num(row, "double1") === 429 && interactive(row) ? 1 : 0,
		);
		expect(caller429s / requests).toBe(2 / 8);
		const resendsAfter429 = sum(withLines, (row) => (interactive(row) ? num(row, "double8") : 0));
		expect(resendsAfter429 / requests).toBe(3 / 8);
		const resendsAfterFailure = sum(withLines, (row) =>
			interactive(row) ? num(row, "double9") : 0,
		);
		expect(resendsAfterFailure / requests).toBe(1 / 8);
	});
});
