// Where a new batch's completion webhook goes: the batch's own metadata.webhook_url, else its
// tenant's webhook.url; refused at creation unless allow-listed and the tenant has a secret.
import type { Context } from "hono";
import { type WebhookTarget, webhookUrlProblem } from "../durable/batch-webhook.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

/** The batch's webhook target, or undefined for none; a 400 for a URL that may not be called. */
export function webhookTarget(
	c: Context<GatewayEnv>,
	batchUrl: string | undefined,
): WebhookTarget | undefined {
	const tenant = c.get("tenant");
	const config = c.get("config");
	const url = batchUrl ?? tenant.webhook?.url;
	if (url === undefined) return undefined;
	const field =
		batchUrl !== undefined ? "metadata.webhook_url" : `tenant "${tenant.name}"'s webhook.url`;
	const param = { details: { param: batchUrl !== undefined ? "metadata.webhook_url" : null } };
	const problem = webhookUrlProblem(url, config.webhookHosts);
	if (problem) {
		throw new GatewayError(
			400,
			`${field} cannot be used: ${problem}.`,
			"webhook_not_allowed",
			param,
		);
	}
	const secretName = tenant.webhook?.secret;
	if (!secretName) {
		throw new GatewayError(
			400,
			`${field} cannot be used: tenant "${tenant.name}" has no webhook secret to sign it with (webhook.secret, set by the operator).`,
			"webhook_not_allowed",
			param,
		);
	}
	if (config.pools.some((pool) => pool.apiKeySecret === secretName)) {
		// The receiver is given the signing secret: it must never be a provider key.
		throw new GatewayError(
			500,
			`Tenant "${tenant.name}"'s webhook.secret names a pool's provider key secret; the operator must give it a secret of its own.`,
			"bad_webhook_secret",
		);
	}
	const secret = (c.env as unknown as Record<string, unknown>)[secretName];
	if (typeof secret !== "string" || secret === "") {
		throw new GatewayError(
			500,
			`Tenant "${tenant.name}"'s webhook secret is not set: the operator must run 'wrangler secret put ${secretName}'.`,
			"no_webhook_secret",
		);
	}
	return { url, secretName };
}
