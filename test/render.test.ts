/**
 * `git dits render` (issue 16, render on demand): a cuts-only conform from the originals,
 * driven through real git and a lazy clone, with clips made by the real ffmpeg.
 *
 * The sources are ProRes 422 HQ at 25 fps whose frames all differ (luma rises with the frame
 * number, chroma tells the clips apart); with the lossless master codec (ffv1) every output
 * frame must decode to the very pixels of the source frame the edit list names, which the
 * framemd5 of both shows. The same cut as FCPXML, xmeml and EDL must give the same frames.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, cloneInto, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
let remote: string;
let author: string;
const FPS = 25;

/** A 3 s ProRes 422 HQ clip, 160x96, with a tone, its frames numbered in their luma. */
function makeClip(file: string, cb: number, tone: number, timecode?: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('ffmpeg', [
    '-v', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=160x96:rate=${FPS},geq=lum='16+N*3':cb=${cb}:cr=128`,
    '-f', 'lavfi', '-i', `sine=frequency=${tone}:sample_rate=48000`,
    '-t', '3', '-c:v', 'prores_ks', '-profile:v', '3', '-c:a', 'pcm_s16le',
    ...(timecode ? ['-timecode', timecode] : []),
    file,
  ]);
}

/** The md5 of each decoded video frame, in order. */
function frameMd5s(file: string): string[] {
  const text = execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0', '-f', 'framemd5', '-'], { maxBuffer: 1 << 26 }).toString('utf8');
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop()!.trim());
}

/** The md5 of the decoded audio. */
function audioMd5(file: string): string {
  return execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-map', '0:a:0', '-f', 'md5', '-']).toString('utf8').trim();
}

function probe(file: string): { streams: { codec_type: string; codec_name: string; profile?: string; nb_frames?: string; duration?: string; tags?: Record<string, string> }[] } {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', file]).toString('utf8'));
}

/** Luma of every pixel of output frame `n`, as 8-bit grey. */
function grey(file: string, n: number): Buffer {
  return execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-vf', `select=eq(n\\,${n})`, '-frames:v', '1', '-pix_fmt', 'gray', '-f', 'rawvideo', '-']);
}

const isPointer = (file: string): boolean => fs.statSync(file).size < 1024 && fs.readFileSync(file, 'utf8').startsWith('version dits/1');

// The cut, 45 frames from 01:00:00:00:
//   0-19  a.mov frames 10-29 (with its audio)
//  20-24  gap (black, silence)
//  25-37  b.mov frames 0-12 (with its audio)
//  38-44  a.mov frames 50-56 (picture only)
// a.mov starts at 01:00:00:00, b.mov at 00:00:10:00; c.mov is in the repository, not in the cut.
const FCPXML = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.10">
  <resources>
    <format id="r1" name="FFVideoFormat160x96p25" frameDuration="100/2500s" width="160" height="96"/>
    <asset id="ra" name="a" start="3600s" duration="3s" hasVideo="1" hasAudio="1" format="r1">
      <media-rep kind="original-media" src="file:///Volumes/Shoot%20Day/Project/Media/a.mov"/>
    </asset>
    <asset id="rb" name="b" start="10s" duration="3s" hasVideo="1" hasAudio="1" format="r1">
      <media-rep kind="original-media" src="file:///Volumes/Shoot%20Day/Project/Media/b.mov"/>
    </asset>
  </resources>
  <library>
    <event name="Day 1">
      <project name="Cut 1">
        <sequence format="r1" duration="45/25s" tcStart="3600s" tcFormat="NDF">
          <spine>
            <asset-clip ref="ra" offset="3600s" name="a" start="90010/25s" duration="20/25s"><marker start="90015/25s" duration="1/25s" value="note"/></asset-clip>
            <gap name="Gap" offset="90020/25s" duration="5/25s"/>
            <asset-clip ref="rb" offset="90025/25s" name="b" start="10s" duration="13/25s"/>
            <clip name="a again" offset="90038/25s" duration="7/25s" start="0s">
              <video ref="ra" offset="0s" start="90050/25s" duration="7/25s"/>
            </clip>
          </spine>
        </sequence>
      </project>
    </event>
  </library>
</fcpxml>
`;

const xmemlClip = (id: string, file: string, start: number, end: number, inF: number, outF: number, full: boolean): string => `
          <clipitem id="${id}">
            <name>${file}</name><enabled>TRUE</enabled>
            <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
            <start>${start}</start><end>${end}</end><in>${inF}</in><out>${outF}</out>
            ${full ? `<file id="file-${file}"><name>${file}</name><pathurl>file://localhost/Users/ed/Project/Media/${file}</pathurl><rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate></file>` : `<file id="file-${file}"/>`}
          </clipitem>`;

const XMEML = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4">
  <sequence id="sequence-1">
    <name>Cut 1</name>
    <duration>45</duration>
    <rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>
    <timecode><rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate><string>01:00:00:00</string><frame>90000</frame><displayformat>NDF</displayformat></timecode>
    <media>
      <video>
        <format><samplecharacteristics><width>160</width><height>96</height></samplecharacteristics></format>
        <track>${xmemlClip('v1', 'a.mov', 0, 20, 10, 30, true)}${xmemlClip('v2', 'b.mov', 25, 38, 0, 13, true)}${xmemlClip('v3', 'a.mov', 38, 45, 50, 57, false)}
        </track>
      </video>
      <audio>
        <track>${xmemlClip('a1', 'a.mov', 0, 20, 10, 30, false)}${xmemlClip('a2', 'b.mov', 25, 38, 0, 13, false)}
        </track>
      </audio>
    </media>
  </sequence>
</xmeml>
`;

const EDL = `TITLE: CUT 1
FCM: NON-DROP FRAME

001  AX       AA/V  C        01:00:00:10 01:00:01:05 01:00:00:00 01:00:00:20
* FROM CLIP NAME: a.mov

002  AX       AA/V  C        00:00:10:00 00:00:10:13 01:00:01:00 01:00:01:13
* FROM CLIP NAME: b.mov

003  AX       V     C        01:00:02:00 01:00:02:07 01:00:01:13 01:00:01:20
* FROM CLIP NAME: a.mov
`;

// A retimed clip and a blurred one: both refused, each with its place.
const SPEED_FCPXML = FCPXML.replace(
  '<asset-clip ref="rb" offset="90025/25s" name="b" start="10s" duration="13/25s"/>',
  `<asset-clip ref="rb" offset="90025/25s" name="b" start="10s" duration="13/25s">
              <timeMap><timept time="0s" value="0s" interp="smooth2"/><timept time="13/25s" value="26/25s" interp="smooth2"/></timeMap>
            </asset-clip>`,
).replace('<gap name="Gap" offset="90020/25s" duration="5/25s"/>', '<gap name="Gap" offset="90020/25s" duration="5/25s"/>').replace(
  '<video ref="ra" offset="0s" start="90050/25s" duration="7/25s"/>',
  '<video ref="ra" offset="0s" start="90050/25s" duration="7/25s"><filter-video ref="rb" name="Gaussian Blur"/></video>',
);

const DISSOLVE_EDL = `TITLE: CUT 2
FCM: NON-DROP FRAME

001  AX       V     C        01:00:00:10 01:00:01:05 01:00:00:00 01:00:00:20
* FROM CLIP NAME: a.mov

002  AX       V     C        01:00:01:05 01:00:01:05 01:00:00:20 01:00:00:20
002  AX       V     D    010 00:00:10:00 00:00:10:13 01:00:00:20 01:00:01:08
* FROM CLIP NAME: a.mov
* TO CLIP NAME: b.mov
`;

const MISSING_FCPXML = FCPXML.replace('Project/Media/b.mov', 'Project/Media/gone.mov');

beforeAll(() => {
  sb = new GitSandbox('dits-render-');
  author = sb.repo('author', { track: ['*.mov'], config: SMALL_CHUNKS });
  makeClip(path.join(author, 'Media', 'a.mov'), 60, 440, '01:00:00:00');
  makeClip(path.join(author, 'Media', 'b.mov'), 200, 660, '00:00:10:00');
  makeClip(path.join(author, 'Media', 'c.mov'), 128, 880);
  writeFile(path.join(author, 'edit', 'cut.fcpxml'), FCPXML);
  writeFile(path.join(author, 'edit', 'cut.xml'), XMEML);
  writeFile(path.join(author, 'edit', 'cut.edl'), EDL);
  writeFile(path.join(author, 'edit', 'speed.fcpxml'), SPEED_FCPXML);
  writeFile(path.join(author, 'edit', 'dissolve.edl'), DISSOLVE_EDL);
  writeFile(path.join(author, 'edit', 'missing.fcpxml'), MISSING_FCPXML);
  sb.mustGit(['add', '.'], author);
  sb.mustGit(['commit', '-q', '-m', 'media and cuts'], author);
  remote = `dits::file://${path.join(sb.dir, 'remotes', 'origin')}`;
  sb.mustGit(['remote', 'add', 'origin', remote], author);
  sb.mustGit(['push', '-q', 'origin', 'main'], author);
});
afterAll(() => sb?.cleanup());

const lazyClone = (name: string): string => cloneInto(sb, remote, name, { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });

describe('git dits render', () => {
  it('--dry-run --json: the plan, the files it needs and the bytes to fetch, nothing fetched', () => {
    const c = lazyClone('plan');
    const r = sb.dits(['render', 'edit/cut.fcpxml', '--dry-run', '--json'], c);
    expect(r.status, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.conformable).toBe(true);
    expect(plan.frameRate).toBe('25');
    expect(plan.frames).toBe(45);
    expect(plan.startTimecode).toBe('01:00:00:00');
    expect(plan.segments.map((s: { path: string; recordIn: string; frames: number; audio: boolean }) => [s.path, s.recordIn, s.frames, s.audio])).toEqual([
      ['Media/a.mov', '01:00:00:00', 20, true],
      ['Media/b.mov', '01:00:01:00', 13, true],
      ['Media/a.mov', '01:00:01:13', 7, false],
    ]);
    expect(plan.filesToFetch).toEqual(['Media/a.mov', 'Media/b.mov']);
    const size = (p: string): number => fs.statSync(path.join(author, p)).size;
    expect(plan.bytesToFetch).toBe(size('Media/a.mov') + size('Media/b.mov'));
    for (const f of ['a', 'b', 'c']) expect(isPointer(path.join(c, 'Media', `${f}.mov`))).toBe(true);
    const text = sb.mustDits(['render', 'edit/cut.fcpxml', '--dry-run'], c);
    expect(text).toMatch(/3 clip\(s\), 45 frames at 25 fps/);
    expect(text).toMatch(/to fetch: 2 /);
  });

  it('renders the cut frame-exactly from the originals, fetching only the files it uses', () => {
    const c = lazyClone('exact');
    const r = sb.dits(['render', 'edit/cut.fcpxml', '--out', 'master-fcpxml.mkv', '--codec', 'ffv1'], c);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/45 frames/);
    // the files of the cut were fetched and written; c.mov, not in the cut, was not
    expect(isPointer(path.join(c, 'Media', 'a.mov'))).toBe(false);
    expect(isPointer(path.join(c, 'Media', 'b.mov'))).toBe(false);
    expect(isPointer(path.join(c, 'Media', 'c.mov'))).toBe(true);
    expect(sb.status(c)).toBe('?? master-fcpxml.mkv\n');
    expect(fs.readdirSync(c).filter((f) => f.includes('dits-render'))).toEqual([]); // no temporary left

    const out = frameMd5s(path.join(c, 'master-fcpxml.mkv'));
    const a = frameMd5s(path.join(author, 'Media', 'a.mov'));
    const b = frameMd5s(path.join(author, 'Media', 'b.mov'));
    expect(out).toHaveLength(45);
    expect(out.slice(0, 20)).toEqual(a.slice(10, 30));
    expect(out.slice(25, 38)).toEqual(b.slice(0, 13));
    expect(out.slice(38, 45)).toEqual(a.slice(50, 57));
    // the gap is black: limited-range luma 16 everywhere
    for (const n of [20, 24]) expect(Math.max(...grey(path.join(c, 'master-fcpxml.mkv'), n))).toBeLessThanOrEqual(16);
    const audio = probe(path.join(c, 'master-fcpxml.mkv')).streams.find((s) => s.codec_type === 'audio');
    expect(audio?.codec_name).toBe('pcm_s24le');

    // in passes of one segment, joined without re-encoding: the same frames and the same audio samples
    const passes = sb.dits(['render', 'edit/cut.fcpxml', '--out', 'master-passes.mkv', '--codec', 'ffv1', '--pass-size', '1'], c);
    expect(passes.status, passes.stderr).toBe(0);
    expect(frameMd5s(path.join(c, 'master-passes.mkv'))).toEqual(out);
    expect(audioMd5(path.join(c, 'master-passes.mkv'))).toBe(audioMd5(path.join(c, 'master-fcpxml.mkv')));
    expect(fs.readdirSync(c).filter((f) => f.includes('dits-render'))).toEqual([]); // parts and list removed

    // the same cut as Premiere XML and as an EDL: the same frames
    for (const [project, master] of [['edit/cut.xml', 'master-xml.mkv'], ['edit/cut.edl', 'master-edl.mkv']] as const) {
      const x = sb.dits(['render', project, '--out', master, '--codec', 'ffv1'], c);
      expect(x.status, `${project}: ${x.stderr}`).toBe(0);
      expect(frameMd5s(path.join(c, master)), project).toEqual(out);
    }
  });

  it('the default master is ProRes 422 HQ in .mov with PCM audio, the timeline\'s length and start timecode', () => {
    const c = lazyClone('prores');
    const r = sb.dits(['render', 'edit/cut.fcpxml', '-o', 'master.mov'], c);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ProRes 422 HQ/);
    const p = probe(path.join(c, 'master.mov'));
    const video = p.streams.find((s) => s.codec_type === 'video')!;
    const audio = p.streams.find((s) => s.codec_type === 'audio')!;
    expect(video.codec_name).toBe('prores');
    expect(video.profile).toBe('HQ');
    expect(Number(video.nb_frames)).toBe(45);
    expect(video.tags?.timecode).toBe('01:00:00:00');
    expect(audio.codec_name).toBe('pcm_s24le');
    expect(Math.abs(Number(audio.duration) - 45 / FPS)).toBeLessThan(1 / FPS);
    // in passes (ProRes parts joined by copy): the same length and timecode
    const passes = sb.dits(['render', 'edit/cut.fcpxml', '-o', 'passes.mov', '--pass-size', '2'], c);
    expect(passes.status, passes.stderr).toBe(0);
    const pp = probe(path.join(c, 'passes.mov'));
    expect(Number(pp.streams.find((s) => s.codec_type === 'video')!.nb_frames)).toBe(45);
    expect(pp.streams.find((s) => s.codec_type === 'video')!.tags?.timecode).toBe('01:00:00:00');
    expect(Number(pp.streams.find((s) => s.codec_type === 'audio')!.duration)).toBeCloseTo(Number(audio.duration), 6);
    // an existing output is not overwritten without --force
    const again = sb.dits(['render', 'edit/cut.fcpxml', '-o', 'master.mov'], c);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/master\.mov exists/);
    expect(again.stderr).toMatch(/--force/);
  });

  it('refuses what a cuts-only render cannot do, listing each with its place, before fetching anything', () => {
    const c = lazyClone('refuse');
    const speed = sb.dits(['render', 'edit/speed.fcpxml', '--out', 'x.mov'], c);
    expect(speed.status).toBe(1);
    expect(speed.stderr).toMatch(/cannot conform 2 thing\(s\)/);
    expect(speed.stderr).toMatch(/01:00:01:00\s+speed-change\s+asset-clip "b": retimed \(timeMap\)/);
    expect(speed.stderr).toMatch(/01:00:01:13\s+effect\s+clip "a again": effect "Gaussian Blur"/);
    expect(speed.stderr).toMatch(/hint:/);
    expect(speed.stderr).not.toMatch(/internal error|\n\s+at /);

    const dissolve = sb.dits(['render', 'edit/dissolve.edl', '--out', 'x.mov'], c);
    expect(dissolve.status).toBe(1);
    expect(dissolve.stderr).toMatch(/01:00:00:20\s+transition\s+event 002: dissolve/);

    const json = sb.dits(['render', 'edit/dissolve.edl', '--dry-run', '--json'], c);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      project: 'edit/dissolve.edl',
      conformable: false,
      unsupported: [{ kind: 'transition', what: 'event 002: dissolve', at: '01:00:00:20' }],
    });
    for (const f of ['a', 'b', 'c']) expect(isPointer(path.join(c, 'Media', `${f}.mov`))).toBe(true);
    expect(fs.existsSync(path.join(c, 'x.mov'))).toBe(false);
  });

  it('interrupted (SIGINT): ffmpeg and what it started are stopped, the partial file is removed, exit 130', async () => {
    const c = lazyClone('interrupt');
    // a stand-in ffmpeg that writes part of its output, then works forever (through a child)
    const bin = path.join(sb.dir, 'slow-ffmpeg');
    const pidFile = path.join(sb.dir, 'slow-ffmpeg.pid');
    writeFile(path.join(bin, 'ffmpeg'), `#!/bin/sh
if [ "$1" = "-version" ]; then echo "ffmpeg version 5.1.9-stand-in"; exit 0; fi
for a; do last="$a"; done
echo partial > "\${last#file:}"
sleep 300 &
echo $! > "${pidFile}"
wait
`);
    fs.chmodSync(path.join(bin, 'ffmpeg'), 0o755);
    const p = spawn(process.execPath, [path.join(import.meta.dirname, '..', 'bin', 'git-dits'), 'render', 'edit/cut.fcpxml', '--out', 'master.mov'], {
      cwd: c,
      env: { ...sb.env, DITS_FFMPEG: path.join(bin, 'ffmpeg') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));
    const partial = (): string[] => fs.readdirSync(c).filter((f) => f.includes('dits-render'));
    for (let i = 0; i < 600 && !(partial().length && fs.existsSync(pidFile)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(partial()).toHaveLength(1);
    p.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toMatch(/render interrupted; nothing was written/);
    expect(partial()).toEqual([]);
    expect(fs.existsSync(path.join(c, 'master.mov'))).toBe(false);
    // the whole group was killed: gone, or a zombie its new parent has not reaped yet
    const sleeper = Number(fs.readFileSync(pidFile, 'utf8'));
    let state = 'gone';
    try {
      state = fs.readFileSync(`/proc/${sleeper}/stat`, 'utf8').split(') ')[1]![0]!;
    } catch {
      // gone
    }
    if (state !== 'gone' && state !== 'Z') process.kill(sleeper, 'SIGKILL'); // leave nothing behind when failing
    expect(['gone', 'Z']).toContain(state);
  });

  it('content the remote cannot give: a clear error naming the files and what to run', () => {
    const c = lazyClone('offline');
    const away = path.join(sb.dir, 'remotes', 'origin.away');
    fs.renameSync(path.join(sb.dir, 'remotes', 'origin'), away);
    try {
      const r = sb.dits(['render', 'edit/cut.fcpxml', '--out', 'master.mov'], c);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/the content of 2 file\(s\) the timeline uses could not be written: Media\/a\.mov, Media\/b\.mov/);
      expect(r.stderr).toMatch(/hint: `git dits pull -- Media\/a\.mov Media\/b\.mov`/);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(fs.existsSync(path.join(c, 'master.mov'))).toBe(false);
    } finally {
      fs.renameSync(away, path.join(sb.dir, 'remotes', 'origin'));
    }
  });

  it('a file at a source path that is not the original (a proxy, an edit not added) is refused, not rendered from', () => {
    const c = lazyClone('proxy');
    sb.mustDits(['pull', '--', 'Media/a.mov'], c);
    // a smaller stand-in at the original's path, as a proxy would be
    execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-i', path.join(c, 'Media', 'a.mov'), '-c:v', 'prores_ks', '-profile:v', '0', '-c:a', 'copy', '-f', 'mov', path.join(c, 'Media', 'a.proxy')]);
    fs.renameSync(path.join(c, 'Media', 'a.proxy'), path.join(c, 'Media', 'a.mov'));
    const r = sb.dits(['render', 'edit/cut.fcpxml', '--out', 'master.mov'], c);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/1 file\(s\) the timeline uses are not the originals in the working tree:\n  Media\/a\.mov: .* here, the original is [\d.]+ KiB/);
    expect(r.stderr).toMatch(/hint: render conforms from the originals/);
    expect(fs.existsSync(path.join(c, 'master.mov'))).toBe(false);
  });

  it('a clip whose media is not in the repository: a clear error naming it', () => {
    const c = lazyClone('missing');
    const r = sb.dits(['render', 'edit/missing.fcpxml', '--out', 'x.mov'], c);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/1 clip\(s\) use media that is not in the repository/);
    expect(r.stderr).toMatch(/asset-clip "b" at 01:00:01:00: \/Volumes\/Shoot Day\/Project\/Media\/gone\.mov \(no tracked file matches\)/);
    expect(r.stderr).toMatch(/hint: add the media/);
    expect(isPointer(path.join(c, 'Media', 'a.mov'))).toBe(true);
    // no ffmpeg: said before anything is downloaded
    const noFf = sb.run(DITS_BIN, ['render', 'edit/cut.fcpxml', '--out', 'x.mov'], c, undefined, { DITS_FFMPEG: path.join(sb.dir, 'no-such-ffmpeg') });
    expect(noFf.status).toBe(1);
    expect(noFf.stderr).toMatch(/ffmpeg not found/);
    expect(noFf.stderr).toMatch(/apt-get install ffmpeg/);
    expect(isPointer(path.join(c, 'Media', 'a.mov'))).toBe(true);
    const usage = sb.dits(['render', 'edit/cut.fcpxml'], c);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/--out/);
    expect(sb.mustDits(['render', '--help'], c)).toMatch(/git dits render <project/);
  });
});
