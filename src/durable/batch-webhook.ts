// One send of a batch's completion webhook, from its Batch object: re-checked against the host
// allow-list, signed with the tenant's secret (a Worker secret, by name), logged without the secret.
import { loadConfig } from "../config.ts";
import {
	afterWebhookAttempt,
	type WebhookDelivery,
	type WebhookNext,
	webhookUrlProblem,
} from "../core/batch-webhook.ts";
import { signWebhook } from "../core/webhook-signature.ts";
import { log } from "../log.ts";

export type { WebhookTarget } from "../core/batch-state.ts";
export { webhookUrlProblem };

/** How long a receiver has to answer one send. */
const SEND_TIMEOUT_MS = 10_000;

export interface WebhookOwner {
	batchId: string;
	tenant: string;
	pool: string;
}

/** Sends the delivery once and says what comes next; never throws (an alarm must not fail). */
export async function sendWebhook(
	delivery: WebhookDelivery,
	owner: WebhookOwner,
	env: Record<string, unknown>,
	send: typeof fetch,
	nowMs: number,
): Promise<WebhookNext> {
	const attempt = delivery.attempts + 1;
	const loaded = loadConfig(env.TOLLBOOTH_CONFIG);
	const refused = loaded.ok
		? webhookUrlProblem(delivery.url, loaded.config.webhookHosts)
		: "TOLLBOOTH_CONFIG is not valid";
	if (refused) {
		// The operator took the host off the list since the batch was created: it is not called.
		logAttempt(
			owner,
			delivery,
			{ attempt, outcome: "gave_up", cause: "host_not_allowed" },
			refused,
		);
		return { kind: "gave_up", delivery: { ...delivery, state: "gave_up" } };
	}
	const secret = env[delivery.secretName];
	let status: number | undefined;
	let cause: string | undefined;
	let message: string | undefined;
	if (typeof secret !== "string" || secret === "") {
		cause = "no_secret";
		message = `the Worker secret ${delivery.secretName} is not set (wrangler secret put ${delivery.secretName})`;
	} else {
		try {
			const response = await send(delivery.url, {
				method: "POST",
				headers: {
					"content-type": "application/json",
					"user-agent": "tollbooth-webhook/1",
					"x-tollbooth-signature": await signWebhook(
						secret,
						delivery.body,
						Math.floor(nowMs / 1000),
					),
				},
				body: delivery.body,
				// A redirect could lead off the allow-list: it counts as a failed send.
				redirect: "manual",
				signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
			});
			status = response.status;
			await response.body?.cancel();
			if (status < 200 || status > 299) cause = "receiver_status";
		} catch (error) {
			cause = "unreachable";
			message = error instanceof Error ? error.message : String(error);
		}
	}
	const next = afterWebhookAttempt(delivery, cause === undefined, nowMs);
	logAttempt(
		owner,
		delivery,
		{
			attempt,
			outcome: next.kind,
			...(status !== undefined && { status }),
			...(cause !== undefined && { cause }),
			...(next.kind === "retry" && { delayMs: next.delayMs }),
		},
		message,
	);
	return next;
}

interface AttemptFields {
	attempt: number;
	outcome: WebhookNext["kind"];
	status?: number;
	cause?: string;
	delayMs?: number;
}

/** One log line per send: the batch, the receiver's host and path (never its query), the outcome. */
function logAttempt(
	owner: WebhookOwner,
	delivery: WebhookDelivery,
	fields: AttemptFields,
	message?: string,
): void {
	let receiver = "";
	try {
		const url = new URL(delivery.url);
		receiver = `${url.host}${url.pathname}`;
	} catch {
		receiver = "(not a URL)";
	}
	log("webhook", {
		batch: owner.batchId,
		tenant: owner.tenant,
		pool: owner.pool,
		receiver,
		...fields,
		...(message !== undefined && { message }),
	});
}
