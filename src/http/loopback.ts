// Plain http to the local simulator only (127.0.0.1, localhost, [::1]): never used against a real service.
import type { PipelinePolicy, PipelineRequest } from '@azure/core-rest-pipeline';

export function isLoopbackHttp(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  } catch {
    return false;
  }
}

/**
 * The library's bearer policy refuses http. Around it (before and after, in the Sign phase), a loopback URL is
 * presented as https and restored right after, so the library's token handling and cache are still the ones in use.
 */
export function loopbackAuthPolicies(): { before: PipelinePolicy; after: PipelinePolicy } {
  const rewritten = new WeakSet<PipelineRequest>();
  return {
    before: {
      name: 'loopbackBeforeAuthPolicy',
      async sendRequest(request, next) {
        if (!isLoopbackHttp(request.url)) return next(request);
        request.allowInsecureConnection = true;
        const original = request.url;
        request.url = `https:${original.slice('http:'.length)}`;
        rewritten.add(request);
        try {
          return await next(request);
        } finally {
          request.url = original;
          rewritten.delete(request);
        }
      },
    },
    after: {
      name: 'loopbackAfterAuthPolicy',
      sendRequest(request, next) {
        if (rewritten.has(request)) request.url = `http:${request.url.slice('https:'.length)}`;
        return next(request);
      },
    },
  };
}

/** Without a credential there is no bearer policy: loopback http only needs the library's insecure flag. */
export function loopbackInsecurePolicy(): PipelinePolicy {
  return {
    name: 'loopbackInsecurePolicy',
    sendRequest(request, next) {
      if (isLoopbackHttp(request.url)) request.allowInsecureConnection = true;
      return next(request);
    },
  };
}
