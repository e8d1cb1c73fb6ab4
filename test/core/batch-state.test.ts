// A batch's state machine: in progress until every line is recorded, its window ends or it is
// cancelled; then its results are due and it ends completed, expired or cancelled.
import { describe, expect, it } from "vitest";
import {
	advanceBatch,
	CANCEL_GRACE_MS,
	cancelBatch,
	completionWindowMs,
	dueForResults,
	failBatch,
	finishBatch,
	isTerminal,
	type LineCounts,
	mayRunLine,
	nextDueMs,
	startBatch,
} from "../../src/core/batch-state.ts";

const counts = (pending: number): LineCounts => ({
	total: 10,
	succeeded: 10 - pending,
	failed: 0,
	cancelled: 0,
	expired: 0,
	pending,
});

const batch = () =>
	startBatch(
		{
			id: "batch_1",
			api: "openai",
			tenant: "t",
			pool: "p",
			endpoint: "/v1/chat/completions",
			completionWindow: "1h",
			metadata: null,
			total: 10,
		},
		3_600_000,
		1000,
	);

describe("batch state", () => {
	it("reads completion windows and refuses what is not one", () => {
		expect(completionWindowMs("24h")).toBe(86_400_000);
		expect(completionWindowMs("90m")).toBe(5_400_000);
		expect(completionWindowMs("5s")).toBe(5000);
		for (const bad of ["", "0h", "24", "1d", "-1h"])
			expect(completionWindowMs(bad)).toBeUndefined();
	});

	it("completes once every line is recorded", () => {
		const started = batch();
		expect(advanceBatch(started, counts(1), 2000)).toBe(started);
		const finalizing = advanceBatch(started, counts(0), 2000);
		expect(finalizing).toMatchObject({ status: "finalizing", finalizingMs: 2000 });
		expect(dueForResults(finalizing, 2000)).toEqual({ due: true, unfinished: "cancelled" });
		expect(finishBatch(finalizing, { outputFileId: "file-1" }, 2500)).toMatchObject({
			status: "completed",
			completedMs: 2500,
			outputFileId: "file-1",
		});
	});

	it("expires at the end of its window: lines still waiting are batch_expired", () => {
		const started = batch();
		expect(nextDueMs(started)).toBe(1000 + 3_600_000);
		expect(mayRunLine(started, 3_600_999)).toBe(true);
		expect(mayRunLine(started, 3_601_000)).toBe(false);
		const expired = advanceBatch(started, counts(4), 3_601_000);
		expect(dueForResults(expired, 3_601_000)).toEqual({ due: true, unfinished: "expired" });
		expect(finishBatch(expired, {}, 3_601_500).status).toBe("expired");
	});

	it("cancels: no line runs from then on, results after the grace for lines already sent", () => {
		const cancelling = cancelBatch(batch(), 5000);
		expect(cancelling.status).toBe("cancelling");
		expect(mayRunLine(cancelling, 5000)).toBe(false);
		expect(dueForResults(cancelling, 5000 + CANCEL_GRACE_MS - 1)).toEqual({ due: false });
		expect(dueForResults(cancelling, 5000 + CANCEL_GRACE_MS)).toEqual({
			due: true,
			unfinished: "cancelled",
		});
		expect(nextDueMs(cancelling)).toBe(5000 + CANCEL_GRACE_MS);
		const cancelled = finishBatch(cancelling, {}, 9000);
		expect(cancelled).toMatchObject({ status: "cancelled", cancelledMs: 9000 });
		// A finished batch cannot be cancelled again.
		expect(cancelBatch(cancelled, 9500)).toBe(cancelled);
	});

	it("fails a batch whose input was refused: ended at once, nothing to run, nothing due", () => {
		const { id, api, tenant, pool, endpoint, completionWindow, metadata } = batch();
		const error = { code: "invalid_json_line", message: "line 1: …", param: null, line: 1 };
		const failed = failBatch(
			{ id, api, tenant, pool, endpoint, completionWindow, metadata, total: 10 },
			[error],
			3_600_000,
			1000,
		);
		expect(failed).toMatchObject({ status: "failed", failedMs: 1000, total: 0, errors: [error] });
		expect(isTerminal(failed.status)).toBe(true);
		expect(mayRunLine(failed, 1000)).toBe(false);
		expect(cancelBatch(failed, 1500)).toBe(failed);
		expect(nextDueMs(failed)).toBeUndefined();
	});
});
