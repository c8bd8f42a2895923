// torchvision-style ImageFolder: root/<class>/**/<image>. Classes and files in ordinal order,
// as Python's sorted(os.listdir()) gives them, so label indices match a PyTorch run.
import { FileIndex } from '../files.js';
import type { ImportItem, Importer, ImportResult, Problem } from './types.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp', '.dcm'];

export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

export const imagefolder: Importer = {
  format: 'imagefolder',
  description: 'one folder per class (torchvision ImageFolder layout)',
  where: 'Arrange your images as <root>/<class name>/<image file>; classes are the folder names in sorted order.',
  required: () => [''],
  async import(root): Promise<ImportResult> {
    const files = new FileIndex(root);
    const problems: Problem[] = [];
    const classes = (await files.entries('')).filter((e) => e.kind === 'dir' && !e.name.startsWith('.')).map((e) => e.name);
    if (classes.length === 0) problems.push({ file: '.', reason: 'no class folders in the root' });
    const items: ImportItem[] = [];
    for (const [label, cls] of classes.entries()) {
      const images = (await files.walk(cls)).filter((f) => isImageFile(f) && !f.split('/').some((p) => p.startsWith('.')));
      if (images.length === 0) problems.push({ file: cls, reason: 'class folder holds no images' });
      for (const image of images) {
        items.push({ id: image.replace(/\.[^./]+$/, ''), path: image, label });
      }
    }
    return { items, classes, problems, sources: [] };
  },
};
