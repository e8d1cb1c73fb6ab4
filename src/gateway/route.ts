// One canonical route per request: the path after /<pool>/v1 normalized once (empty segments
// collapsed, percent-decoded once, anything ambiguous refused) and what kind of route it is, so
// the path a request is metered by is exactly the path it is sent to.
import type { PoolConfig } from "../config.ts";
import type { Provider } from "../providers/types.ts";
import { GatewayError } from "./errors.ts";

export type RouteKind = "metered" | "batch" | "pass-through";

export interface Route {
	/** The canonical path after /v1: "/" and segments of plain URL path characters, no "." or "..". */
	rest: string;
	/** A provider endpoint that runs a model (metered by tokens), tollbooth's batch APIs, or any other. */
	kind: RouteKind;
	/** The query as received ("?…", or "" without one), passed on to the provider. */
	search: string;
}

/**
 * What a decoded segment may hold: RFC 3986 path characters that need no percent-encoding. So the
 * canonical path is sent as it is, and no server downstream can decode it into something else.
 */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~:@!$&'()*+,;=-]+$/;
/** Encoded "/" and "\": a segment that some servers split in two and others do not. */
const ENCODED_SEPARATOR = /%(?:2f|5c)/i;
const METERED_METHODS = ["POST"];
/** Served by tollbooth itself (src/gateway/batches.ts, message-batches.ts), never passed through. */
const BATCH_ROUTE = /^\/(files|batches|messages\/batches)(\/|$)/;
const PASS_THROUGH_METHODS = ["GET", "HEAD", "POST", "DELETE"];

function badPath(why: string): GatewayError {
	return new GatewayError(400, `The request path is not a valid API path: ${why}.`, "bad_path");
}

/** The canonical form of `segments` (still percent-encoded, as received after /v1). */
export function canonicalRest(segments: readonly string[]): string {
	const canonical: string[] = [];
	for (const raw of segments) {
		if (raw === "") continue;
		if (ENCODED_SEPARATOR.test(raw)) throw badPath(`"${raw}" holds an encoded / or \\`);
		let segment: string;
		try {
			segment = decodeURIComponent(raw);
		} catch {
			throw badPath(`"${raw}" is not valid percent-encoding`);
		}
		if (segment === "." || segment === "..") throw badPath("it has a . or .. segment");
		if (!PLAIN_SEGMENT.test(segment)) {
			throw badPath(`"${raw}" holds characters an API path does not use`);
		}
		canonical.push(segment);
	}
	return `/${canonical.join("/")}`;
}

/**
 * The route of `request` in `pool`: its canonical path, whether the provider meters it, and the
 * refusals a route decides (unknown routes when the pool denies them, methods a route does not take).
 */
export function resolveRoute(request: Request, pool: PoolConfig, provider: Provider): Route {
	// The path as received, still percent-encoded: /<pool>/v1/<rest...>.
	const { pathname, search } = new URL(request.url);
	const [, poolSegment, versionSegment, ...segments] = pathname.split("/");
	if (poolSegment !== pool.name || versionSegment !== "v1") {
		throw badPath(`call /${pool.name}/v1/... with the pool's name and /v1 spelled plainly`);
	}
	const rest = canonicalRest(segments);
	if (BATCH_ROUTE.test(rest)) return { rest, kind: "batch", search };
	const kind: RouteKind = provider.meteredRoutes.has(rest) ? "metered" : "pass-through";
	if (kind === "pass-through" && pool.passThrough === "deny") {
		const served = [...provider.meteredRoutes].join(", ");
		throw new GatewayError(
			404,
			`Pool "${pool.name}" serves only ${served} under /v1; ${rest} is not passed through.`,
			"route_denied",
		);
	}
	const methods = kind === "metered" ? METERED_METHODS : PASS_THROUGH_METHODS;
	if (!methods.includes(request.method)) {
		throw new GatewayError(
			405,
			`${request.method} is not allowed on ${rest}; use ${methods.join(" or ")}.`,
			"bad_method",
			{ headers: new Headers({ allow: methods.join(", ") }) },
		);
	}
	return { rest, kind, search };
}
