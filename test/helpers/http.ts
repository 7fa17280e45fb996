/** A response body as JSON, typed loosely: tests assert its shape themselves. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions inspect arbitrary JSON
export async function readJson(response: Response): Promise<any> {
  return response.json()
}
