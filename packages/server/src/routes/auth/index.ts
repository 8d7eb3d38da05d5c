import type { App } from '../../app.js';
import { LoginThrottle } from '../../services/login-throttle.js';
import { prepareDummyHash } from '../../services/passwords.js';
import { registerLoginRoutes } from './login.js';
import { registerMeRoute } from './me.js';
import { registerRegisterRoute } from './register.js';
import { registerTokenRoute } from './token.js';

/** Register, login, logout, me, token. The login throttle lives as long as the app. */
export async function registerAuthRoutes(app: App): Promise<void> {
  await prepareDummyHash();
  registerRegisterRoute(app);
  registerLoginRoutes(app, new LoginThrottle());
  registerMeRoute(app);
  registerTokenRoute(app);
}
