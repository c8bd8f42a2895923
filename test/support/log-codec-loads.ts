// Module-resolution hooks (node:module register) that print "loaded <url>" on stderr for every
// codec module resolved (cornerstone's, dcmjs-codecs): how the tests see that a codec is loaded
// only when needed.
export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<{ url: string }>,
): Promise<{ url: string }> {
  const resolved = await next(specifier, context);
  if (/@cornerstonejs\/|\/dcmjs-codecs\//.test(resolved.url)) process.stderr.write(`loaded ${resolved.url}\n`);
  return resolved;
}
