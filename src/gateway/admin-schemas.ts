// The admin API's bodies and answers as zod schemas: validation of every body with field-named
// errors; admin-openapi.ts builds the OpenAPI document from the same definitions.
import * as z from "zod/mini";
import { configErrorMessage, tenantPolicySchema } from "../config.ts";
import { GatewayError } from "./errors.ts";

/** A tenant's body: a runtime tenant's name is part of admin URLs, so it is a slug. */
export const tenantBodySchema = z.extend(tenantPolicySchema, {
	name: z
		.string()
		.check(
			z.regex(
				/^[a-z0-9][a-z0-9_.-]{0,63}$/,
				"use lower-case letters, digits, '.', '-' and '_', at most 64, starting with a letter or digit",
			),
		),
});

export const keyBodySchema = z.strictObject({
	/** When the key stops working (ISO 8601); none: never. */
	expiresAt: z.optional(z.iso.datetime({ offset: true })),
});

const date = z.string().check(z.regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date YYYY-MM-DD"));

export const usageQuerySchema = z.strictObject({
	from: date,
	to: date,
	by: z.optional(z.literal("user")),
});

/** A batch's statuses, as OpenAI names them (GET /admin/batches filters on them). */
export const BATCH_STATUSES = [
	"validating",
	"in_progress",
	"finalizing",
	"completed",
	"failed",
	"expired",
	"cancelling",
	"cancelled",
] as const;

export const batchesQuerySchema = z.strictObject({
	tenant: z.optional(z.string()),
	pool: z.optional(z.string()),
	status: z.optional(z.enum(BATCH_STATUSES)),
	/** Batches per page: 1 to 100, default 20. */
	limit: z.optional(
		z
			.string()
			.check(
				z.refine(
					(raw) => /^\d+$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 100,
					"must be a whole number from 1 to 100",
				),
			),
	),
	/** The last id of the previous page. */
	after: z.optional(z.string()),
});

/** The body parsed by `schema`, or a 400 naming the first bad field (all are in the message). */
export function parseBody<T>(schema: z.ZodMiniType<T>, value: unknown, prefix = ""): T {
	const parsed = schema.safeParse(value, { error: configErrorMessage });
	if (parsed.success) return parsed.data;
	const fieldOf = (path: PropertyKey[]) => [prefix, ...path.map(String)].filter(Boolean).join(".");
	const problems = parsed.error.issues.map(
		(issue) => `${fieldOf(issue.path) || "(body)"}: ${issue.message}`,
	);
	const first = parsed.error.issues[0];
	throw new GatewayError(
		400,
		`Invalid ${prefix || "body"}: ${problems.join("; ")}`,
		"invalid_body",
		{
			details: { param: first ? fieldOf(first.path) || null : null, code: "invalid_body" },
		},
	);
}
