// The admin API's bodies and answers as valibot schemas: validation of every body with field-named
// errors; admin-openapi.ts builds the OpenAPI document from the same definitions.
import * as v from "valibot";
import { issuePath, strictObject, tenantPolicySchema, VALIDATION } from "../config.ts";
import { GatewayError } from "./errors.ts";

/** A tenant's body: a runtime tenant's name is part of admin URLs, so it is a slug. */
export const tenantBodySchema = strictObject({
	...tenantPolicySchema.entries,
	name: v.pipe(
		v.string(),
		v.regex(
			/^[a-z0-9][a-z0-9_.-]{0,63}$/,
			"use lower-case letters, digits, '.', '-' and '_', at most 64, starting with a letter or digit",
		),
	),
});

/** An ISO 8601 date and time with seconds and a zone (Z or ±hh:mm). */
const ISO_DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

const isoDateTime = v.pipe(
	v.string(),
	v.check(
		(value) => ISO_DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)),
		"Invalid ISO datetime",
	),
	v.metadata({ format: "date-time", pattern: ISO_DATE_TIME.source }),
);

export const keyBodySchema = strictObject({
	/** When the key stops working (ISO 8601); none: never. */
	expiresAt: v.optional(isoDateTime),
});

const date = v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date YYYY-MM-DD"));

export const usageQuerySchema = strictObject({
	from: date,
	to: date,
	by: v.optional(v.literal("user")),
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

export const batchesQuerySchema = strictObject({
	tenant: v.optional(v.string()),
	pool: v.optional(v.string()),
	status: v.optional(v.picklist(BATCH_STATUSES)),
	/** Batches per page: 1 to 100, default 20. */
	limit: v.optional(
		v.pipe(
			v.string(),
			v.check(
				(raw) => /^\d+$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 100,
				"must be a whole number from 1 to 100",
			),
		),
	),
	/** The last id of the previous page. */
	after: v.optional(v.string()),
});

/** The body parsed by `schema`, or a 400 naming the first bad field (all are in the message). */
export function parseBody<Schema extends v.GenericSchema>(
	schema: Schema,
	value: unknown,
	prefix = "",
): v.InferOutput<Schema> {
	const parsed = v.safeParse(schema, value, VALIDATION);
	if (parsed.success) return parsed.output;
	const fieldOf = (issue: v.BaseIssue<unknown>) =>
		[prefix, ...issuePath(issue)].filter(Boolean).join(".");
	const problems = parsed.issues.map((issue) => `${fieldOf(issue) || "(body)"}: ${issue.message}`);
	const first = parsed.issues[0];
	throw new GatewayError(
		400,
		`Invalid ${prefix || "body"}: ${problems.join("; ")}`,
		"invalid_body",
		{
			details: { param: fieldOf(first) || null, code: "invalid_body" },
		},
	);
}
