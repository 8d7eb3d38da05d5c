import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { apiError } from '../../errors.js';
import type { SandboxService } from './service.js';

/** The built-in template that carries the desktop programs. */
export const DESKTOP_TEMPLATE = 'gui';

/** What a template needs for the desktop (paths inside its tree). */
const REQUIRED_PATHS = [
  '/usr/bin/Xvfb',
  '/usr/bin/x11vnc',
  '/usr/bin/websockify',
  '/usr/share/novnc/vnc.html',
];

/**
 * Whether a new sandbox gets the desktop: an explicit `gui` wins; without one, the `gui`
 * template implies it (so `{"template": "gui"}` alone has a `vnc_url`).
 */
export function wantsDesktop(gui: boolean | undefined, template: string): boolean {
  return gui ?? template === DESKTOP_TEMPLATE;
}

/**
 * 400 VALIDATION_ERROR (at `/gui`) when `gui: true` is asked of a template that cannot run the
 * desktop: another built-in (they have no X server), or a custom template whose tree lacks
 * Xvfb, x11vnc, websockify or noVNC. `name` is the template as asked, `runtimeId` what
 * `resolveTemplate` made of it. The built-in `gui` passes without being built here (the
 * runtime builds it on first use, as for any built-in).
 */
export async function requireDesktopTemplate(
  service: SandboxService,
  name: string,
  runtimeId: string,
): Promise<void> {
  if (runtimeId === DESKTOP_TEMPLATE) return;
  let missing: string[];
  if (service.templates.builtins.includes(runtimeId)) {
    missing = [...REQUIRED_PATHS];
  } else {
    const template = await service.templates.resolve(runtimeId);
    missing = [];
    for (const file of REQUIRED_PATHS) {
      // lstat: a symlink counts as present and is never followed out of the tree.
      const found = await lstat(path.join(template.rootfs, file)).then(
        () => true,
        () => false,
      );
      if (!found) missing.push(file);
    }
  }
  if (missing.length === 0) return;
  throw apiError(
    'VALIDATION_ERROR',
    {
      fields: [
        {
          path: '/gui',
          message: `template ${name} has no desktop (missing ${missing.join(', ')}); use the gui template or one with xvfb, x11vnc, websockify and novnc`,
        },
      ],
    },
    `Template ${name} cannot run the desktop: use the gui template, or one with xvfb, x11vnc, websockify and novnc`,
  );
}
