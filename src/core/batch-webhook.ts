// A batch's completion webhook as pure rules: which URLs may be called (allow-listed hosts, https
// but for loopback), the body sent when a batch ends, and the retries of a delivery that failed.
import type { BatchRecord, LineCounts } from "./batch-state.ts";

/** Tries of one delivery, counting the first; the n-th retry waits 10 s × 2^(n-1). */
export const WEBHOOK_MAX_ATTEMPTS = 5;
export const WEBHOOK_FIRST_RETRY_MS = 10_000;

/** Where a batch's webhook stands: waiting for its next try, delivered, or given up. */
export type WebhookState = "pending" | "delivered" | "gave_up";

/** A batch's webhook in its Batch object: the body is frozen when the batch ends. */
export interface WebhookDelivery {
	url: string;
	secretName: string;
	body: string;
	state: WebhookState;
	/** Sends made so far. */
	attempts: number;
	/** When the next try is due (while pending). */
	nextMs: number;
}

const isLoopback = (hostname: string) =>
	hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);

/** Whether `host` ("name" or "name:port") is allow-listed: exactly, or under a "*.domain" entry. */
function hostAllowed(url: URL, allowedHosts: readonly string[]): boolean {
	return allowedHosts.some((entry) =>
		entry.startsWith("*.")
			? url.hostname.endsWith(entry.slice(1))
			: entry === url.host || entry === url.hostname,
	);
}

/** Why `raw` may not receive webhooks, or undefined when it may. */
export function webhookUrlProblem(
	raw: string,
	allowedHosts: readonly string[],
): string | undefined {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		return `"${raw}" is not a URL`;
	}
	if (url.username || url.password) return "a webhook URL cannot carry credentials";
	if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.hostname))) {
		return "a webhook URL must be https (plain http only to a loopback host, for local development)";
	}
	if (!hostAllowed(url, allowedHosts)) {
		return `host ${url.host} is not in webhookHosts in TOLLBOOTH_CONFIG (the operator's allow-list of webhook hosts)`;
	}
	return undefined;
}

const seconds = (ms: number | undefined) => (ms === undefined ? null : Math.floor(ms / 1000));

/** What a receiver is told when a batch ends: which batch, how it ended, where its results are. */
export function webhookBody(record: BatchRecord, counts: LineCounts): string {
	return JSON.stringify({
		type: `batch.${record.status}`,
		batch: {
			id: record.id,
			api: record.api,
			pool: record.pool,
			status: record.status,
			created_at: seconds(record.createdMs),
			ended_at: seconds(
				record.completedMs ?? record.failedMs ?? record.cancelledMs ?? record.expiredMs,
			),
			request_counts: {
				total: counts.total,
				succeeded: counts.succeeded,
				failed: counts.failed,
				cancelled: counts.cancelled,
				expired: counts.expired,
			},
			output_file_id: record.outputFileId ?? null,
			error_file_id: record.errorFileId ?? null,
			metadata: record.metadata,
		},
	});
}

/** After a send: delivered, tried again later, or given up after WEBHOOK_MAX_ATTEMPTS. */
export type WebhookNext =
	| { kind: "delivered" | "gave_up"; delivery: WebhookDelivery }
	| { kind: "retry"; delivery: WebhookDelivery; delayMs: number };

export function afterWebhookAttempt(
	delivery: WebhookDelivery,
	delivered: boolean,
	nowMs: number,
): WebhookNext {
	const attempts = delivery.attempts + 1;
	if (delivered)
		return { kind: "delivered", delivery: { ...delivery, attempts, state: "delivered" } };
	if (attempts >= WEBHOOK_MAX_ATTEMPTS) {
		return { kind: "gave_up", delivery: { ...delivery, attempts, state: "gave_up" } };
	}
	const delayMs = WEBHOOK_FIRST_RETRY_MS * 2 ** (attempts - 1);
	return { kind: "retry", delivery: { ...delivery, attempts, nextMs: nowMs + delayMs }, delayMs };
}
