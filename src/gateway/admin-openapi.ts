// The admin API's OpenAPI document, built from the schemas that validate its bodies. Not part of
// the Worker: `npm run openapi` writes it to public/admin/openapi.json, a static asset, because
// zod's JSON Schema generator would add a tenth to the deployed bundle; test/node/openapi.test.ts
// fails when the file is stale.
import * as z from "zod/mini";
import { BATCH_STATUSES, keyBodySchema, tenantBodySchema } from "./admin-schemas.ts";

// The answers' shapes: documented here only, as the Worker builds its answers itself.
const errorSchema = z.object({
	error: z.object({
		message: z.string(),
		type: z.string(),
		/** The field at fault, e.g. "budget.tokensPerDay", or null. */
		param: z.nullable(z.string()),
		code: z.string(),
	}),
});

const keySchema = z.object({
	id: z.string(),
	prefix: z.string(),
	createdAt: z.string(),
	expiresAt: z.nullable(z.string()),
	lastUsedAt: z.nullable(z.string()),
});

const usageRowSchema = z.object({
	date: z.string(),
	user: z.optional(z.string()),
	model: z.string(),
	requests: z.number(),
	inputTokens: z.number(),
	cachedInputTokens: z.number(),
	outputTokens: z.number(),
	costUsd: z.number(),
});

const batchCountsSchema = z.object({
	total: z.number(),
	succeeded: z.number(),
	failed: z.number(),
	cancelled: z.number(),
	expired: z.number(),
	pending: z.number(),
});

const batchSchema = z.object({
	id: z.string(),
	api: z.enum(["openai", "anthropic"]),
	tenant: z.string(),
	pool: z.string(),
	status: z.enum(BATCH_STATUSES),
	endpoint: z.string(),
	createdAt: z.string(),
	expiresAt: z.string(),
	endedAt: z.nullable(z.string()),
	counts: batchCountsSchema,
	outputFileId: z.nullable(z.string()),
	errorFileId: z.nullable(z.string()),
	webhook: z.nullable(
		z.object({
			url: z.string(),
			state: z.enum(["waiting", "pending", "delivered", "gave_up"]),
			attempts: z.number(),
			nextAt: z.nullable(z.string()),
		}),
	),
});

function jsonSchema(schema: z.ZodMiniType, io: "input" | "output" = "output"): unknown {
	const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<
		string,
		unknown
	>;
	return rest;
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
