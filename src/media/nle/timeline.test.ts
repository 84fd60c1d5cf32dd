import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DitsUserError } from '../../errors.js';
import { parseRate, parseFcpxmlTime, rat } from './rational-time.js';
import { parseTimeline } from './timeline.js';

const fixture = (name: string): Buffer => readFileSync(join(import.meta.dirname, 'fixtures', name));
const parse = (name: string, text: string, frameRate?: ReturnType<typeof rat>) => parseTimeline(name, Buffer.from(text), { frameRate });
const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DitsUserError);
    return (e as DitsUserError).code;
  }
  return undefined;
};

describe('rational time', () => {
  it('parses FCPXML times and rates exactly', () => {
    expect(parseFcpxmlTime('1001/30000s')).toEqual({ num: 1001, den: 30000 });
    expect(parseFcpxmlTime('90010/25s')).toEqual({ num: 18002, den: 5 });
    expect(parseFcpxmlTime('3600s')).toEqual({ num: 3600, den: 1 });
    expect(parseFcpxmlTime('1.5s')).toEqual({ num: 3, den: 2 });
    expect(parseFcpxmlTime('-0.5s')).toEqual({ num: -1, den: 2 });
    expect(() => parseFcpxmlTime('5 frames')).toThrow(RangeError);
    expect(parseRate('29.97')).toEqual({ num: 30000, den: 1001 });
    expect(parseRate('23.976')).toEqual({ num: 24000, den: 1001 });
    expect(parseRate('24000/1001')).toEqual({ num: 24000, den: 1001 });
    expect(parseRate('25')).toEqual({ num: 25, den: 1 });
    expect(parseRate('fast')).toBeUndefined();
  });
});

describe('parseTimeline: FCPXML', () => {
  it('the hand-written Final Cut Pro 1.10 fixture: two clips, and the compound and connected clips refused', () => {
    const t = parseTimeline('cut.fcpxml', fixture('final-cut-1.10.fcpxml'));
    expect(t.frameRate).toEqual({ num: 25, den: 1 });
    expect(t.startTimecode).toBe('01:00:00:00');
    expect(t.clips.map((c) => [c.reference.name, c.recordStart, c.frames, c.source])).toEqual([
      ['A001C003.mov', 0, 250, { seconds: { num: 0, den: 1 } }],
      ['Interview – Ünïcode.mp4', 250, 500, { seconds: { num: 12, den: 1 } }],
    ]);
    expect(t.unsupported).toEqual([
      { kind: 'compound-clip', what: 'ref-clip "Compound Clip 1" (compound clip)', at: '01:00:30:00' },
      { kind: 'overlapping-video', what: 'connected asset-clip "A001C003" on lane 1 (plays over the primary storyline)', at: '01:00:40:00' },
      { kind: 'separate-audio', what: 'connected audio asset-clip "music" on lane -1 (mixed under the cut)', at: '01:00:00:00' },
    ]);
  });

  it('29.97 rational times, asset timecode subtracted, gaps, a clip wrapping its video and audio', () => {
    const xml = `<fcpxml version="1.9"><resources>
      <format id="f" frameDuration="1001/30000s" width="320" height="180"/>
      <asset id="a" name="A" start="108108/30s" hasVideo="1" hasAudio="1" format="f"><media-rep kind="original-media" src="file:///m/A.mov"/></asset>
      </resources><library><event><project name="P"><sequence format="f" tcStart="0s" tcFormat="DF"><spine>
        <asset-clip ref="a" offset="0s" start="3606603/1000s" duration="60060/30000s"/>
        <gap offset="60060/30000s" duration="30030/30000s"/>
        <clip offset="90090/30000s" duration="1001/1000s" start="1001/1000s" name="wrapped">
          <video ref="a" offset="1001/1000s" start="108108/30s"/><audio ref="a" offset="1001/1000s" start="108108/30s"/>
        </clip>
      </spine></sequence></project></event></library></fcpxml>`;
    const t = parse('p.fcpxml', xml);
    expect(t.frameRate).toEqual({ num: 30000, den: 1001 });
    expect(t.dropFrame).toBe(true);
    expect(t.name).toBe('P');
    expect([t.width, t.height]).toEqual([320, 180]);
    expect(t.unsupported).toEqual([]);
    // asset start 3603.6s (01:00:00;00 at 29.97); the clip starts 3 s of media later
    expect(t.clips.map((c) => [c.recordStart, c.frames, c.source, c.audio])).toEqual([
      [0, 60, { seconds: { num: 3003, den: 1000 } }, true], // 90 frames
      [90, 30, { seconds: { num: 0, den: 1 } }, true],
    ]);
    expect(t.durationFrames).toBe(120);
    // a time between frames is a damaged project, not a rounding
    expect(codeOf(() => parse('p.fcpxml', xml.replace('offset="60060/30000s"', 'offset="60061/30000s"')))).toBe('project-corrupt');
  });

  it('a file with several projects: each is named, --sequence picks one', () => {
    const project = (n: string, dur: string): string => `<project name="${n}"><sequence format="f"><spine>
      <asset-clip ref="a" offset="0s" duration="${dur}"/></spine></sequence></project>`;
    const xml = `<fcpxml version="1.10"><resources><format id="f" frameDuration="1/25s"/>
      <asset id="a" start="0s" hasVideo="1"><media-rep kind="original-media" src="file:///m/A.mov"/></asset>
      <media id="c"><sequence format="f"><spine/></sequence></media></resources>
      <library><event name="E">${project('Cut 1', '1s')}${project('Cut 2', '2s')}</event></library></fcpxml>`;
    let error: unknown;
    try {
      parse('e.fcpxml', xml);
    } catch (e) {
      error = e;
    }
    expect((error as DitsUserError).code).toBe('timeline-ambiguous');
    expect((error as DitsUserError).message).toBe('e.fcpxml holds 2 projects: "Cut 1", "Cut 2"');
    expect((error as DitsUserError).hint).toBe('name the one to render: --sequence "Cut 1"');
    const two = parseTimeline('e.fcpxml', Buffer.from(xml), { sequence: 'Cut 2' });
    expect([two.name, two.durationFrames]).toEqual(['Cut 2', 50]);
    expect(codeOf(() => parseTimeline('e.fcpxml', Buffer.from(xml), { sequence: 'Cut 9' }))).toBe('timeline-not-found');
  });

  it('a clip whose audio comes from another file (double-system sound) is refused', () => {
    const xml = `<fcpxml version="1.10"><resources>
      <format id="f" frameDuration="1/25s"/>
      <asset id="v" name="camera" start="0s" hasVideo="1" hasAudio="1" format="f"><media-rep kind="original-media" src="file:///m/cam.mov"/></asset>
      <asset id="s" name="recorder" start="0s" hasAudio="1"><media-rep kind="original-media" src="file:///m/sound.wav"/></asset>
      </resources><project name="P"><sequence format="f"><spine>
        <clip name="synced" offset="0s" duration="2s"><video ref="v" offset="0s" duration="2s"/><audio ref="s" offset="0s" duration="2s"/></clip>
      </spine></sequence></project></fcpxml>`;
    const t = parse('p.fcpxml', xml);
    expect(t.clips).toEqual([]);
    expect(t.unsupported).toEqual([{ kind: 'separate-audio', what: 'clip "synced": audio from another file (recorder)', at: '00:00:00:00' }]);
  });

  it('lists effects, retimes, transitions, titles, generators and split edits with their timecodes', () => {
    const xml = `<fcpxml version="1.10"><resources>
      <format id="f" frameDuration="1/25s"/>
      <asset id="a" name="A" start="0s" hasVideo="1" format="f"><media-rep kind="original-media" src="file:///m/A.mov"/></asset>
      <effect id="blur" name="Gaussian Blur" uid="x"/><effect id="solid" name="Custom" uid="y"/>
      </resources><library><event><project name="P"><sequence format="f" tcStart="3600s"><spine>
        <asset-clip ref="a" name="one" offset="3600s" start="0s" duration="2s"><filter-video ref="blur"/></asset-clip>
        <transition name="Cross Dissolve" offset="3601s" duration="1s"/>
        <asset-clip ref="a" name="two" offset="3602s" start="0s" duration="2s"><timeMap><timept time="0s" value="0s"/></timeMap><adjust-transform position="10 0"/></asset-clip>
        <title name="Basic Title" offset="3604s" duration="1s" ref="solid"/>
        <video name="Solid" ref="solid" offset="3605s" duration="1s"/>
        <asset-clip ref="a" name="three" offset="3606s" start="10s" duration="2s" audioStart="1s" audioDuration="2s">
          <title name="Lower third" lane="1" offset="11s" duration="1s"/>
        </asset-clip>
      </spine></sequence></project></event></library></fcpxml>`;
    const t = parse('p.fcpxml', xml);
    expect(t.unsupported).toEqual([
      { kind: 'effect', what: 'asset-clip "one": effect "Gaussian Blur"', at: '01:00:00:00' },
      { kind: 'transition', what: 'transition "Cross Dissolve"', at: '01:00:01:00' },
      { kind: 'speed-change', what: 'asset-clip "two": retimed (timeMap)', at: '01:00:02:00' },
      { kind: 'effect', what: 'asset-clip "two": adjust-transform', at: '01:00:02:00' },
      { kind: 'title', what: 'title "Basic Title"', at: '01:00:04:00' },
      { kind: 'generator', what: 'generator "Custom"', at: '01:00:05:00' },
      { kind: 'separate-audio', what: 'asset-clip "three": split edit (audio cut apart from the video)', at: '01:00:06:00' },
      // one second into the clip: its offset is in the clip's own (asset) time, which starts at 10 s
      { kind: 'title', what: 'title "Lower third" on lane 1', at: '01:00:07:00' },
    ]);
  });
});

describe('parseTimeline: xmeml', () => {
  const clip = (o: { name: string; start: number; end: number; in: number; out: number; file?: string; extra?: string; ntsc?: boolean }): string => `
    <clipitem><name>${o.name}</name><rate><timebase>30</timebase><ntsc>${o.ntsc === false ? 'FALSE' : 'TRUE'}</ntsc></rate>
      <start>${o.start}</start><end>${o.end}</end><in>${o.in}</in><out>${o.out}</out>
      <file id="${o.file ?? 'f1'}"><pathurl>file://localhost/Media/${o.file ?? 'f1'}.mov</pathurl></file>${o.extra ?? ''}</clipitem>`;
  const seq = (video: string, audio = ''): string => `<xmeml version="5"><sequence><name>S</name>
    <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
    <timecode><string>00:59:58;00</string><frame>107832</frame><displayformat>DF</displayformat></timecode>
    <media><video>${video}</video><audio>${audio}</audio></media></sequence></xmeml>`;

  it('clips at 29.97 from the media start, with or without their audio', () => {
    const t = parse('s.xml', seq(
      `<track>${clip({ name: 'a', start: 0, end: 30, in: 15, out: 45 })}${clip({ name: 'b', start: 40, end: 50, in: 0, out: 10, file: 'f2' })}</track>`,
      `<track>${clip({ name: 'a', start: 0, end: 30, in: 15, out: 45 })}</track>`,
    ));
    expect(t.frameRate).toEqual({ num: 30000, den: 1001 });
    expect(t.startTimecode).toBe('00:59:58;00');
    expect(t.unsupported).toEqual([]);
    expect(t.clips.map((c) => [c.reference.path, c.recordStart, c.frames, c.source, c.audio])).toEqual([
      ['/Media/f1.mov', 0, 30, { seconds: { num: 1001, den: 2000 } }, true],
      ['/Media/f2.mov', 40, 10, { seconds: { num: 0, den: 1 } }, false],
    ]);
  });

  it('lists speed changes, filters, transitions, titles, overlapping tracks and separate audio', () => {
    const remap = (speed: number) =>
      `<filter><effect><name>Time Remap</name><effectid>timeremap</effectid><parameter><parameterid>speed</parameterid><value>${speed}</value></parameter></effect></filter>`;
    const t = parse('s.xml', seq(
      `<track>${clip({ name: 'a', start: 0, end: 30, in: 0, out: 30, extra: remap(100) })}${clip({ name: 'slow', start: 30, end: 60, in: 0, out: 15, extra: remap(50) })}
         <transitionitem><start>55</start><end>65</end><effect><name>Cross Dissolve</name></effect></transitionitem>
         ${clip({ name: 'blur', start: 60, end: 90, in: 0, out: 30, extra: '<filter><effect><name>Gaussian Blur</name><effectid>GaussianBlur</effectid></effect></filter>' })}
         <generatoritem><name>Title</name><start>90</start><end>100</end><effect><name>Text</name><effectcategory>Text</effectcategory></effect></generatoritem></track>
       <track>${clip({ name: 'over', start: 10, end: 20, in: 0, out: 10, file: 'f2' })}</track>`,
      `<track>${clip({ name: 'music', start: 0, end: 90, in: 0, out: 90, file: 'f3' })}</track>`,
    ));
    expect(t.unsupported).toEqual([
      { kind: 'speed-change', what: 'clip "slow" on V1: speed 50%', at: '00:59:59;00' },
      { kind: 'speed-change', what: 'clip "slow" on V1: plays 15 source frames in 30', at: '00:59:59;00' },
      { kind: 'transition', what: 'video transition "Cross Dissolve" on V1', at: '00:59:59;25' },
      { kind: 'effect', what: 'clip "blur" on V1: effect "Gaussian Blur"', at: '01:00:00;00' },
      { kind: 'title', what: 'title "Title" on V1', at: '01:00:01;00' },
      { kind: 'overlapping-video', what: 'clip "over" on V2 over "a" on V1', at: '00:59:58;10' },
      { kind: 'separate-audio', what: 'audio clip "music" on A1 not cut with a video clip', at: '00:59:58;00' },
    ]);
  });

  it('Audio Levels at 0 dB and Opacity at 100 % change nothing and pass; at other values they are refused', () => {
    const filter = (id: string, name: string, param: string, value: number): string =>
      `<filter><effect><name>${name}</name><effectid>${id}</effectid><parameter><parameterid>${param}</parameterid><value>${value}</value></parameter></effect></filter>`;
    const t = parse('s.xml', seq(
      `<track>${clip({ name: 'a', start: 0, end: 30, in: 0, out: 30, extra: filter('opacity', 'Opacity', 'opacity', 100) })}${clip({ name: 'b', start: 30, end: 60, in: 0, out: 30, extra: filter('opacity', 'Opacity', 'opacity', 50) })}</track>`,
      `<track>${clip({ name: 'a', start: 0, end: 30, in: 0, out: 30, extra: filter('audiolevels', 'Audio Levels', 'level', 1) })}${clip({ name: 'b', start: 30, end: 60, in: 0, out: 30, extra: filter('audiolevels', 'Audio Levels', 'level', 0.5) })}</track>`,
    ));
    expect(t.unsupported.map((u) => u.what)).toEqual(['clip "b" on V1: effect "Opacity"', 'clip "b" on A1: effect "Audio Levels"']);
  });

  it('every clip over a long one on another track is listed, not only the first', () => {
    const t = parse('s.xml', seq(
      `<track>${clip({ name: 'long', start: 0, end: 100, in: 0, out: 100 })}</track>
       <track>${clip({ name: 'one', start: 10, end: 20, in: 0, out: 10, file: 'f2' })}${clip({ name: 'two', start: 30, end: 40, in: 0, out: 10, file: 'f2' })}</track>`,
    ));
    expect(t.unsupported.map((u) => u.what)).toEqual(['clip "one" on V2 over "long" on V1', 'clip "two" on V2 over "long" on V1']);
  });

  it('the Premiere fixture: the clips; audio clipitems without a place are listed, not guessed', () => {
    const t = parseTimeline('premiere.xml', fixture('premiere-export.xml'));
    expect(t.clips.map((c) => [c.reference.name, c.recordStart, c.frames])).toEqual([
      ['A001C003.mov', 0, 250],
      ['interview_02.mxf', 250, 250],
      ['A001C003.mov', 500, 250],
    ]);
    expect(t.unsupported.map((u) => u.kind)).toEqual(['other', 'other']);
  });
});

describe('parseTimeline: CMX3600 EDL', () => {
  it('the fixture: a cut, a dissolve refused, black as a gap, audio-only events listed', () => {
    const t = parseTimeline('cut.edl', fixture('cmx3600.edl'), { frameRate: rat(25) });
    expect(t.clips.map((c) => [c.reference.path, c.recordStart, c.frames, c.source])).toEqual([
      ['/Volumes/Shoot Day 1/Project/Media/A001C003.mov', 0, 250, { timecode: '01:00:00:00', timecodeFrames: 90000 }],
    ]);
    expect(t.unsupported).toEqual([
      { kind: 'transition', what: 'event 002: dissolve "CROSS DISSOLVE"', at: '01:00:10:00' },
      { kind: 'separate-audio', what: 'event 004: audio only (AA) not cut with a video event', at: '01:00:32:00' },
      { kind: 'separate-audio', what: 'event 005: audio only (A) not cut with a video event', at: '01:00:32:00' },
    ]);
    expect(t.durationFrames).toBe(250);
  });

  it('drop-frame: 29.97 implied, positions in real frames across a dropped minute, no false speed change', () => {
    const edl = `TITLE: DF
FCM: DROP FRAME
001  AX  V  C  00:00:00;00 00:00:59;28 01:00:00;00 01:00:59;28
* FROM CLIP NAME: a.mov
002  AX  V  C  00:00:10;00 00:00:10;04 01:00:59;28 01:01:00;04
* FROM CLIP NAME: b.mov
003  AX  V  C  00:00:20;00 00:00:20;10 01:01:00;04 01:01:00;12
* FROM CLIP NAME: b.mov
M2   AX       059.9                00:00:20;00
`;
    const t = parse('df.edl', edl);
    expect(t.frameRate).toEqual({ num: 30000, den: 1001 });
    expect(t.dropFrame).toBe(true);
    expect(t.startTimecode).toBe('01:00:00;00');
    expect(t.clips.map((c) => [c.reference.name, c.recordStart, c.frames])).toEqual([
      ['a.mov', 0, 1798],
      ['b.mov', 1798, 4], // 59;28 59;29 1:00;02 1:00;03 (;00 and ;01 do not exist)
    ]);
    expect(t.unsupported).toEqual([
      { kind: 'speed-change', what: 'event 003: speed change (M2 AX at 059.9 fps)', at: '01:01:00;04' },
    ]);
  });

  it('an event split into an A line and a V line is one clip with its audio', () => {
    const t = parse('s.edl', `001  AX  A  C  00:00:02:00 00:00:03:00 01:00:00:00 01:00:01:00
001  AX  V  C  00:00:02:00 00:00:03:00 01:00:00:00 01:00:01:00
* FROM CLIP NAME: a.mov
`, rat(25));
    expect(t.unsupported).toEqual([]);
    expect(t.clips.map((c) => [c.reference.name, c.recordStart, c.frames, c.audio])).toEqual([['a.mov', 0, 25, true]]);
  });

  it('events over a long one are each listed as overlapping', () => {
    const t = parse('o.edl', `001  AX  V  C  00:00:00:00 00:00:04:00 01:00:00:00 01:00:04:00
* FROM CLIP NAME: a.mov
002  AX  V  C  00:00:00:00 00:00:01:00 01:00:01:00 01:00:02:00
* FROM CLIP NAME: b.mov
003  AX  V  C  00:00:00:00 00:00:01:00 01:00:02:00 01:00:03:00
* FROM CLIP NAME: c.mov
`, rat(25));
    expect(t.unsupported).toEqual([
      { kind: 'overlapping-video', what: 'event 002 (b.mov) overlaps event 001 (a.mov)', at: '01:00:01:00' },
      { kind: 'overlapping-video', what: 'event 003 (c.mov) overlaps event 001 (a.mov)', at: '01:00:02:00' },
    ]);
  });

  it('track B is picture and sound', () => {
    const t = parse('b.edl', `001  AX  B  C  00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n* FROM CLIP NAME: a.mov\n`, rat(25));
    expect(t.clips.map((c) => [c.frames, c.audio])).toEqual([[25, true]]);
  });

  it('without a rate, lengths are not compared (they depend on it); with one they are', () => {
    const edl = `FCM: NON-DROP FRAME
001  AX  V  C  01:00:00:10 01:00:01:05 01:00:00:00 01:00:00:20
* FROM CLIP NAME: a.mov
`;
    expect(parse('a.edl', edl).frameRate).toBeNull();
    expect(parse('a.edl', edl).unsupported).toEqual([]);
    expect(parse('a.edl', edl, rat(25)).clips[0]!.frames).toBe(20);
    expect(parse('a.edl', edl, rat(30)).unsupported).toEqual([{ kind: 'speed-change', what: 'event 001: 25 source frames in 20 record frames', at: '01:00:00:00' }]);
  });

  it('a .prproj or an unknown file is not a timeline it can conform', () => {
    expect(codeOf(() => parse('x.txt', 'notes'))).toBe('project-format-unknown');
    expect(codeOf(() => parse('x.xml', '<PremiereData/>'))).toBe('project-format-unknown');
  });
});
