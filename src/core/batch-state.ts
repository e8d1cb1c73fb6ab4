// One batch's life as a pure state machine: its status (OpenAI's words), its timestamps, whether a
// line may still run, and when it is finished. Counts come from the recorded lines.
export type BatchStatus =
	| "validating"
	| "in_progress"
	| "finalizing"
	| "completed"
	| "failed"
	| "expired"
	| "cancelling"
	| "cancelled";

/** The API a batch was created through: it decides the shapes of its objects and result lines. */
export type BatchApi = "openai" | "anthropic";

/** How long a cancelled batch waits for lines already sent before its results are written. */
export const CANCEL_GRACE_MS = 3000;

/** A batch as it is kept: what it was created with, its status and when each status began. */
export interface BatchRecord extends NewBatch {
	status: BatchStatus;
	createdMs: number;
	expiresMs: number;
	inProgressMs?: number;
	finalizingMs?: number;
	completedMs?: number;
	cancellingMs?: number;
	cancelledMs?: number;
	expiredMs?: number;
	failedMs?: number;
	outputFileId?: string;
	errorFileId?: string;
	/** Why a batch failed at validation (its input), in OpenAI's shape. */
	errors?: BatchInputError[];
}

/** One problem of a batch's input, in OpenAI's `errors.data` shape: `line` is 1-based, or null. */
export interface BatchInputError {
	code: string;
	message: string;
	param: string | null;
	line: number | null;
}

/** Where a batch's completion webhook goes, and the Worker secret (by name) that signs it. */
export interface WebhookTarget {
	url: string;
	secretName: string;
}

/** Lines by how they ended, and the lines not recorded yet. */
export interface LineCounts {
	total: number;
	succeeded: number;
	failed: number;
	cancelled: number;
	expired: number;
	pending: number;
}

/** Why a line that never ran is closed: the batch was cancelled, or its window ran out. */
export type UnfinishedReason = "cancelled" | "expired";

export interface NewBatch {
	id: string;
	api: BatchApi;
	tenant: string;
	pool: string;
	/** The provider path every line goes to, e.g. "/v1/chat/completions". */
	endpoint: string;
	inputFileId?: string;
	completionWindow: string;
	metadata: Record<string, string> | null;
	total: number;
	webhook?: WebhookTarget;
}

/** "24h", "90m", "3600s": a completion window in ms, or undefined when it is not one. */
export function completionWindowMs(window: string): number | undefined {
	const match = /^(\d{1,6})([hms])$/.exec(window);
	if (!match) return undefined;
	const unit = { h: 3_600_000, m: 60_000, s: 1000 }[match[2] as "h" | "m" | "s"];
	const ms = Number(match[1]) * unit;
	return ms > 0 ? ms : undefined;
}

/** A batch whose lines are all queued: in progress from nowMs until its window ends. */
export function startBatch(batch: NewBatch, windowMs: number, nowMs: number): BatchRecord {
	return {
		...batch,
		status: "in_progress",
		createdMs: nowMs,
		inProgressMs: nowMs,
		expiresMs: nowMs + windowMs,
	};
}

/** A batch whose input was refused: failed at once, with no line to run. */
export function failBatch(
	batch: NewBatch,
	errors: BatchInputError[],
	windowMs: number,
	nowMs: number,
): BatchRecord {
	return {
		...batch,
		total: 0,
		status: "failed",
		errors,
		createdMs: nowMs,
		failedMs: nowMs,
		expiresMs: nowMs + windowMs,
	};
}

/** Whether a line may be sent now: only while the batch is in progress and inside its window. */
export function mayRunLine(batch: BatchRecord, nowMs: number): boolean {
	return batch.status === "in_progress" && nowMs < batch.expiresMs;
}

/** A cancel: stops new lines at once; results are written after CANCEL_GRACE_MS. */
export function cancelBatch(batch: BatchRecord, nowMs: number): BatchRecord {
	if (batch.status !== "in_progress" && batch.status !== "validating") return batch;
	return { ...batch, status: "cancelling", cancellingMs: nowMs };
}

/**
 * What time has done to the batch: every line recorded → finalizing; the window passed →
 * finalizing as expired. Returns the batch unchanged when nothing is due.
 */
export function advanceBatch(batch: BatchRecord, counts: LineCounts, nowMs: number): BatchRecord {
	if (batch.status !== "in_progress") return batch;
	if (counts.pending === 0) return { ...batch, status: "finalizing", finalizingMs: nowMs };
	if (nowMs >= batch.expiresMs) {
		return { ...batch, status: "finalizing", finalizingMs: nowMs, expiredMs: nowMs };
	}
	return batch;
}

/** Whether its results should be written now, and what closes the lines that never ran. */
export function dueForResults(
	batch: BatchRecord,
	nowMs: number,
): { due: false } | { due: true; unfinished: UnfinishedReason } {
	if (batch.status === "finalizing") {
		return { due: true, unfinished: batch.expiredMs !== undefined ? "expired" : "cancelled" };
	}
	if (batch.status === "cancelling" && nowMs >= (batch.cancellingMs ?? 0) + CANCEL_GRACE_MS) {
		return { due: true, unfinished: "cancelled" };
	}
	return { due: false };
}

/** Results written: the batch's final status. */
export function finishBatch(
	batch: BatchRecord,
	files: { outputFileId?: string; errorFileId?: string },
	nowMs: number,
): BatchRecord {
	const done = { ...batch, ...files };
	if (batch.status === "cancelling") return { ...done, status: "cancelled", cancelledMs: nowMs };
	if (batch.expiredMs !== undefined) return { ...done, status: "expired" };
	return { ...done, status: "completed", completedMs: nowMs };
}

/** When the batch next needs attention without any line arriving: its expiry, or a cancel's end. */
export function nextDueMs(batch: BatchRecord): number | undefined {
	if (batch.status === "in_progress") return batch.expiresMs;
	if (batch.status === "cancelling") return (batch.cancellingMs ?? 0) + CANCEL_GRACE_MS;
	if (batch.status === "finalizing") return batch.finalizingMs;
	return undefined;
}

export function isTerminal(status: BatchStatus): boolean {
	return (
		status === "completed" || status === "failed" || status === "expired" || status === "cancelled"
	);
}
