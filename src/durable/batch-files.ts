// Batch files in R2: inputs a tenant uploads and the output, error and results files a batch
// writes. Who owns a file travels in its R2 metadata, so a lookup answers only its owner.
export interface StoredFile {
	id: string;
	tenant: string;
	pool: string;
	/** "batch" for an input; "batch_output" for what a batch wrote. */
	purpose: string;
	filename: string;
	bytes: number;
	createdMs: number;
}

/** A random id with a prefix: "file-…", "batch_…", "msgbatch_…". */
export function newId(prefix: string): string {
	return `${prefix}${crypto.randomUUID().replaceAll("-", "")}`;
}

const fileKey = (id: string) => `files/${id}`;

export async function putFile(
	bucket: R2Bucket,
	file: Omit<StoredFile, "bytes">,
	body: string | Uint8Array,
): Promise<StoredFile> {
	const bytes =
		typeof body === "string" ? new TextEncoder().encode(body).byteLength : body.byteLength;
	await bucket.put(fileKey(file.id), body, {
		customMetadata: {
			tenant: file.tenant,
			pool: file.pool,
			purpose: file.purpose,
			filename: file.filename,
			createdMs: String(file.createdMs),
		},
	});
	return { ...file, bytes };
}

function storedFile(id: string, object: R2Object): StoredFile {
	const meta = object.customMetadata ?? {};
	return {
		id,
		tenant: meta.tenant ?? "",
		pool: meta.pool ?? "",
		purpose: meta.purpose ?? "",
		filename: meta.filename ?? "",
		bytes: object.size,
		createdMs: Number(meta.createdMs ?? 0),
	};
}

/** The file, if `tenant` owns it in `pool`; anyone else's answers undefined, as a missing one. */
export async function findFile(
	bucket: R2Bucket,
	id: string,
	tenant: string,
	pool: string,
): Promise<StoredFile | undefined> {
	const object = await bucket.head(fileKey(id));
	if (!object) return undefined;
	const file = storedFile(id, object);
	return file.tenant === tenant && file.pool === pool ? file : undefined;
}

export async function readFileText(bucket: R2Bucket, id: string): Promise<string | undefined> {
	const object = await bucket.get(fileKey(id));
	return object ? object.text() : undefined;
}

export async function deleteFile(bucket: R2Bucket, id: string): Promise<void> {
	await bucket.delete(fileKey(id));
}
