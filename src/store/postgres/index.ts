export async function createPostgresStore(_: { url?: string; pool?: never }): Promise<never> { throw new Error("not yet") }
