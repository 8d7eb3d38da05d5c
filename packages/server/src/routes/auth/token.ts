import { Type } from 'typebox';
import type { App } from '../../app.js';
import { ONE_MINUTE_MS } from '../../plugins/rate-limit.js';
import { issueToken } from '../../services/auth.js';

const TokenBody = Type.Object(
  { api_key: Type.String({ minLength: 1, maxLength: 200, description: 'An API key (`crl_sk_…`).' }) },
  { additionalProperties: false },
);

const TokenResponse = Type.Object({
  token: Type.String({ description: 'HS256 JWT; send as `Authorization: Bearer …`.' }),
  expires_at: Type.String({ format: 'date-time' }),
});

/** `POST /v1/auth/token`: exchange an API key for a 15-minute JWT with the key's scopes. */
export function registerTokenRoute(app: App): void {
  app.post(
    '/v1/auth/token',
    {
      config: {
        public: true,
        ipRateLimit: { bucket: 'token', limit: app.config.tokenLimitPerMinute, windowMs: ONE_MINUTE_MS },
      },
      schema: {
        tags: ['auth'],
        security: [],
        summary: 'Exchange an API key for a short-lived JWT',
        body: TokenBody,
        response: { 200: TokenResponse },
      },
    },
    async (request) => issueToken(app, request.body.api_key),
  );
}
