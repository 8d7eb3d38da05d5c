/**
 * The template directory tests share, so Debian trees are built once per machine rather than
 * once per run: `CORRAL_TEMPLATE_DIR`, else /var/cache/corral/templates.
 */
export function testTemplateDir(): string {
  return process.env.CORRAL_TEMPLATE_DIR ?? '/var/cache/corral/templates';
}
