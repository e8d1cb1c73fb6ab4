// The admin API's OpenAPI document, built from the schemas that validate its bodies. Not part of
// the Worker: `npm run openapi` writes it to public/admin/openapi.json, a static asset, because
// a JSON Schema generator has no place in the deployed bundle; test/node/openapi.test.ts fails when
// the file is stale.
import { toJsonSchema } from "@valibot/to-json-schema";
import * as v from "valibot";
import { BATCH_STATUSES, keyBodySchema, tenantBodySchema } from "./admin-schemas.ts";

// The answers' shapes: documented here only, as the Worker builds its answers itself; strict, as
// an answer has no other fields.
const errorSchema = v.strictObject({
	error: v.strictObject({
		message: v.string(),
		type: v.string(),
		/** The field at fault, e.g. "budget.tokensPerDay", or null. */
		param: v.nullable(v.string()),
		code: v.string(),
	}),
});

const keySchema = v.strictObject({
	id: v.string(),
	prefix: v.string(),
	createdAt: v.string(),
	expiresAt: v.nullable(v.string()),
	lastUsedAt: v.nullable(v.string()),
});

const usageRowSchema = v.strictObject({
	date: v.string(),
	user: v.optional(v.string()),
	model: v.string(),
	requests: v.number(),
	inputTokens: v.number(),
	cachedInputTokens: v.number(),
	outputTokens: v.number(),
	costUsd: v.number(),
});

const batchCountsSchema = v.strictObject({
	total: v.number(),
	succeeded: v.number(),
	failed: v.number(),
	cancelled: v.number(),
	expired: v.number(),
	pending: v.number(),
});

const batchSchema = v.strictObject({
	id: v.string(),
	api: v.picklist(["openai", "anthropic"]),
	tenant: v.string(),
	pool: v.string(),
	status: v.picklist(BATCH_STATUSES),
	endpoint: v.string(),
	createdAt: v.string(),
	expiresAt: v.string(),
	endedAt: v.nullable(v.string()),
	counts: batchCountsSchema,
	outputFileId: v.nullable(v.string()),
	errorFileId: v.nullable(v.string()),
	webhook: v.nullable(
		v.strictObject({
			url: v.string(),
			state: v.picklist(["waiting", "pending", "delivered", "gave_up"]),
			attempts: v.number(),
			nextAt: v.nullable(v.string()),
		}),
	),
});

type JsonNode = Record<string, unknown>;

/** In an answer (output) a field with a default is always there: it is required. */
function withDefaultsRequired(schema: v.GenericSchema, converted: JsonNode): JsonNode | undefined {
	if (!("entries" in schema)) return undefined;
	const entries = schema.entries as Record<string, { type: string; default?: unknown }>;
	const required = Object.keys(entries).filter((key) => {
		const entry = entries[key];
		return !entry?.type.endsWith("optional") || entry.default !== undefined;
	});
	return { ...converted, required };
}

/** No empty `required`, and no safe-integer minimum under an exclusive one (0 for a count). */
function tidy(node: unknown): unknown {
	if (Array.isArray(node)) return node.map(tidy);
	if (typeof node !== "object" || node === null) return node;
	const { required, minimum, ...rest } = node as JsonNode;
	const tidied: JsonNode = Object.fromEntries(
		Object.entries(rest).map(([key, value]) => [key, tidy(value)]),
	);
	if (Array.isArray(required) && required.length > 0) tidied.required = required;
	if (minimum !== undefined && rest.exclusiveMinimum === undefined) tidied.minimum = minimum;
	return tidied;
}

function jsonSchema(schema: v.GenericSchema, io: "input" | "output" = "output"): unknown {
	const { $schema: _, ...rest } = toJsonSchema(schema, {
		target: "draft-2020-12",
		typeMode: io,
		errorMode: "ignore",
		overrideSchema: ({ valibotSchema, jsonSchema }) =>
			io === "output" ? withDefaultsRequired(valibotSchema, jsonSchema as JsonNode) : undefined,
	}) as JsonNode;
	return tidy(rest);
}

const json = (ref: string) => ({
	"application/json": { schema: { $ref: `#/components/schemas/${ref}` } },
});
const errors = {
	"400": { description: "A bad body or query; `param` names the field.", content: json("Error") },
	"401": { description: "No or wrong admin token.", content: json("Error") },
	"404": { description: "No such tenant or key.", content: json("Error") },
	"409": {
		description: "The name is taken, or belongs to TOLLBOOTH_CONFIG.",
		content: json("Error"),
	},
	"413": { description: "The body is larger than 64 KiB.", content: json("Error") },
};
const tenantParam = { name: "tenant", in: "path", required: true, schema: { type: "string" } };

/** The OpenAPI 3.1 document of the admin API. */
export function openApiDocument(): unknown {
	return {
		openapi: "3.1.0",
		info: { title: "tollbooth admin API", version: "1" },
		components: {
			securitySchemes: { admin: { type: "http", scheme: "bearer" } },
			schemas: {
				TenantBody: jsonSchema(tenantBodySchema, "input"),
				Tenant: jsonSchema(tenantBodySchema),
				KeyBody: jsonSchema(keyBodySchema, "input"),
				Key: jsonSchema(keySchema),
				UsageRow: jsonSchema(usageRowSchema),
				Batch: jsonSchema(batchSchema),
				Error: jsonSchema(errorSchema),
			},
		},
		security: [{ admin: [] }],
		paths: {
			"/admin/tenants": {
				get: {
					summary: "Every tenant, configured and runtime",
					responses: { "200": { description: "{ tenants: Tenant[] }" }, ...errors },
				},
				post: {
					summary: "Create a runtime tenant",
					requestBody: { required: true, content: json("TenantBody") },
					responses: { "201": { description: "The tenant", content: json("Tenant") }, ...errors },
				},
			},
			"/admin/tenants/{tenant}": {
				parameters: [tenantParam],
				get: {
					summary: "One tenant",
					responses: { "200": { description: "The tenant", content: json("Tenant") }, ...errors },
				},
				patch: {
					summary: "Change a runtime tenant's fields (the top-level fields given replace the old)",
					requestBody: { required: true, content: json("TenantBody") },
					responses: { "200": { description: "The tenant", content: json("Tenant") }, ...errors },
				},
				delete: {
					summary: "Delete a runtime tenant and its keys",
					responses: { "204": { description: "Deleted" }, ...errors },
				},
			},
			"/admin/tenants/{tenant}/keys": {
				parameters: [tenantParam],
				post: {
					summary: "Issue a key (shown once)",
					requestBody: { content: json("KeyBody") },
					responses: { "201": { description: "{ id, key, prefix, expiresAt }" }, ...errors },
				},
				get: {
					summary: "The tenant's keys (never the keys themselves)",
					responses: { "200": { description: "{ keys: Key[] }" }, ...errors },
				},
			},
			"/admin/tenants/{tenant}/keys/{id}": {
				parameters: [
					tenantParam,
					{ name: "id", in: "path", required: true, schema: { type: "string" } },
				],
				delete: {
					summary: "Revoke a key (everywhere within 5 s)",
					responses: { "204": { description: "Revoked" }, ...errors },
				},
			},
			"/admin/tenants/{tenant}/usage": {
				parameters: [
					tenantParam,
					{ name: "from", in: "query", required: true, schema: { type: "string", format: "date" } },
					{ name: "to", in: "query", required: true, schema: { type: "string", format: "date" } },
					{ name: "by", in: "query", schema: { enum: ["user"] } },
				],
				get: {
					summary: "Exact usage per day and model (and end user)",
					responses: { "200": { description: "{ tenant, rows: UsageRow[] }" }, ...errors },
				},
			},
			"/admin/batches": {
				parameters: [
					{ name: "tenant", in: "query", schema: { type: "string" } },
					{ name: "pool", in: "query", schema: { type: "string" } },
					{ name: "status", in: "query", schema: { enum: BATCH_STATUSES } },
					{ name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 100 } },
					{ name: "after", in: "query", schema: { type: "string" } },
				],
				get: {
					summary: "Every tenant's batches, newest first, with status and line counts",
					responses: {
						"200": { description: "{ batches: Batch[], hasMore, lastId }" },
						...errors,
					},
				},
			},
		},
	};
}
