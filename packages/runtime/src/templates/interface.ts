/**
 * Templates: read-only Debian root trees that sandboxes overlay. Content-addressed (the id is a
 * hash of the definition), built once per template directory, stored shifted into the sandbox
 * id range (see shared/ids.ts). A build either completes and is renamed into place, or leaves
 * nothing behind.
 */
export interface TemplateStore {
  /** The built-in names: base, python, nodejs, go, gui. */
  readonly builtins: readonly string[];
  /** Resolve a name or id to a ready template, building a built-in on first use. */
  resolve(nameOrId: string, options?: BuildOptions): Promise<Template>;
  /** Build (or reuse) a template from a definition. */
  build(definition: TemplateDefinition, options?: BuildOptions): Promise<Template>;
  /** Import an OCI image layout or `docker save` tarball (a .tar file path) as a template. */
  importImage(tarPath: string, name: string, options?: BuildOptions): Promise<Template>;
  /** Templates present on disk. */
  list(): Promise<Template[]>;
  /** Remove a template; TEMPLATE_NOT_FOUND if absent. */
  remove(id: string): Promise<void>;
}

export interface TemplateDefinition {
  name: string;
  /** Debian suite, default 'bookworm'. */
  suite?: string;
  /** Debian packages on top of the base set. */
  packages: string[];
  /** Shell steps run as root inside the tree after packages are installed. */
  run?: string[];
}

export interface Template {
  /** `tpl_` + first 24 hex chars of the definition hash. */
  id: string;
  name: string;
  /** Absolute path of the read-only root tree (the overlay's lowerdir). */
  rootfs: string;
  sizeBytes: number;
  createdAt: string;
}

export interface BuildOptions {
  /** Progress lines (mmdebstrap output, layer n/m, …). */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}
