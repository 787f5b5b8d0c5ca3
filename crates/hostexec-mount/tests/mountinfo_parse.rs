//! The mountinfo, /proc/mounts and fstab parsers against real kernel lines (mount-utils'
//! test vectors for ParseMountInfo, ListProcMounts and SearchMountPoints, with the Go bugs
//! fixed), and property tests: arbitrary entries printed
//! as the kernel prints them parse back equal; arbitrary bytes never panic.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use hostexec_mount::mountinfo::*;
use hostexec_mount::{consistent_read, ConsistentReadError};
use proptest::prelude::*;

fn one(line: &str) -> MountInfo {
    let v = parse_mountinfo(line.as_bytes()).unwrap();
    assert_eq!(v.len(), 1, "{line}");
    v.into_iter().next().unwrap()
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

#[test]
fn go_vectors_parse_with_every_field() {
    let m = one("224 62 253:0 /var/lib/docker/devicemapper/test/shared /var/lib/docker/devicemapper/test/shared rw,relatime master:1 shared:44 - ext4 /dev/mapper/ssd-root rw,seclabel,data=ordered");
    assert_eq!((m.id, m.parent_id, m.major, m.minor), (224, 62, 253, 0));
    assert_eq!(
        m.root(),
        Path::new("/var/lib/docker/devicemapper/test/shared")
    );
    assert_eq!(m.mount_point(), m.root());
    assert_eq!(m.mount_options(), ["rw", "relatime"]);
    assert_eq!(
        m.optional_fields(),
        [OptionalField::Master(1), OptionalField::Shared(44)]
    );
    assert_eq!(m.shared_group(), Some(44));
    assert_eq!(m.fs_type(), "ext4");
    assert_eq!(m.fs_subtype(), None);
    assert_eq!(m.source(), "/dev/mapper/ssd-root");
    assert_eq!(m.super_options(), os(&["rw", "seclabel", "data=ordered"]));
    assert!(!m.root_deleted);

    let m = one("222 24 253:0 /tmp/src /mnt/dst rw,relatime shared:1 - ext4 /dev/mapper/vagrant--vg-root rw,errors=remount-ro,data=ordered");
    assert_eq!(m.root(), Path::new("/tmp/src"));
    assert_eq!(m.mount_point(), Path::new("/mnt/dst"));
    assert_eq!(m.optional_fields(), [OptionalField::Shared(1)]);

    let m = one(
        "28 18 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
    );
    assert_eq!((m.major, m.minor), (0, 24));
    assert_eq!(m.source(), "tmpfs");
    assert_eq!(m.super_options(), os(&["ro", "mode=755"]));
    assert!(m.is_read_only());

    let m = one("83 63 0:44 / /var/lib/bar rw,relatime - tmpfs tmpfs rw");
    assert!(m.optional_fields().is_empty());
    assert!(!m.is_read_only());
}

#[test]
fn quoted_super_options_keep_their_commas() {
    let m = one(
        r#"761 60 8:0 / /var/lib/kubelet/plugins/kubernetes.io/iscsi/iface-default/x-lun-0 rw,relatime shared:421 - ext4 /dev/sda rw,context="system_u:object_r:container_file_t:s0:c314,c894",data=ordered"#,
    );
    assert_eq!(
        m.super_options(),
        os(&[
            "rw",
            r#"context="system_u:object_r:container_file_t:s0:c314,c894""#,
            "data=ordered"
        ])
    );
}

#[test]
fn octal_escapes_are_decoded_to_bytes() {
    // Kernel 6.18 output for mount points named "sp ace", "t<TAB>ab", "back\slash", "nl<LF>x".
    let cases: [(&str, &[u8]); 5] = [
        (r"/tmp/mt/sp\040ace", b"/tmp/mt/sp ace"),
        (r"/tmp/mt/t\011ab", b"/tmp/mt/t\tab"),
        (r"/tmp/mt/back\134slash", b"/tmp/mt/back\\slash"),
        (r"/tmp/mt/nl\012x", b"/tmp/mt/nl\nx"),
        // A backslash not followed by three octal digits stays (the kernel never prints one
        // raw in a path, but a parser must not lose bytes).
        (r"/tmp/\9x\04", b"/tmp/\\9x\\04"),
    ];
    for (raw, want) in cases {
        let m = one(&format!(
            "88 67 0:40 / {raw} rw,relatime - tmpfs tmpfs rw,size=1024k,mode=755"
        ));
        assert_eq!(m.mount_point().as_os_str().as_bytes(), want, "{raw}");
    }
    // Escapes in the root and the source too; \777 is not a byte and stays literal.
    let m = one(r"88 67 0:40 /a\040b /x rw - nfs srv:/ex\040port\777 rw");
    assert_eq!(m.root(), Path::new("/a b"));
    assert_eq!(m.source().as_bytes(), br"srv:/ex port\777");
}

#[test]
fn non_utf8_bytes_survive_byte_exact() {
    let mut line = b"64 63 0:40 / /tmp/fm/\xff\xfe rw,relatime - tmpfs s\xff rw\n".to_vec();
    line.extend_from_slice(b"65 63 0:41 / /tmp/\xc3\xa9 rw - tmpfs x rw\n");
    let v = parse_mountinfo(&line).unwrap();
    assert_eq!(
        v[0].mount_point().as_os_str().as_bytes(),
        b"/tmp/fm/\xff\xfe"
    );
    assert_eq!(v[0].source().as_bytes(), b"s\xff");
    assert_eq!(v[1].mount_point(), Path::new("/tmp/é"));
}

#[test]
fn an_empty_source_is_accepted() {
    // `mount -t tmpfs "" dir`: kernel 6.18 prints an empty field (kubernetes/kubernetes#66134).
    let m = one("92 67 0:43 / /tmp/mt/del rw,relatime - tmpfs  rw");
    assert_eq!(m.source(), "");
    assert_eq!(m.super_options(), os(&["rw"]));
    let m = one("92 67 0:43 / /tmp/mt/del rw,relatime shared:147 - tmpfs  rw");
    assert_eq!(m.source(), "");
    assert_eq!(m.optional_fields(), [OptionalField::Shared(147)]);
}

#[test]
fn propagation_tags() {
    for (tag, want) in [
        ("shared:2", OptionalField::Shared(2)),
        ("master:2", OptionalField::Master(2)),
        ("propagate_from:7", OptionalField::PropagateFrom(7)),
        ("unbindable", OptionalField::Unbindable),
        ("shared:x", OptionalField::Other("shared:x".into())),
        ("future:1", OptionalField::Other("future:1".into())),
    ] {
        let m = one(&format!(
            "89 67 0:40 / /tmp/mt/pA rw,relatime {tag} - tmpfs tmpfs rw"
        ));
        assert_eq!(m.optional_fields(), *std::slice::from_ref(&want), "{tag}");
        assert_eq!(want.to_string(), tag);
    }
    let m = one("89 67 0:40 / /a rw shared:3 master:1 propagate_from:1 - tmpfs t rw");
    assert_eq!(m.optional_fields().len(), 3);
}

#[test]
fn deleted_roots_and_mount_points() {
    let m = one("88 67 254:0 /tmp/mt/f1//deleted /tmp/mt/f2 rw,relatime - ext4 /dev/vda rw");
    assert!(m.root_deleted);
    assert_eq!(m.root(), Path::new("/tmp/mt/f1"));
    let m = one(r"88 67 254:0 / /a/different/kind/of/path\040(deleted) rw - ext4 /dev/vda rw");
    assert!(!m.root_deleted);
    assert_eq!(
        m.mount_point(),
        Path::new("/a/different/kind/of/path (deleted)")
    );
    // mount-utils' isMountPointMatch vectors, on decoded paths.
    assert!(mount_point_matches(
        m.mount_point(),
        Path::new("/a/different/kind/of/path")
    ));
    assert!(mount_point_matches(Path::new("/"), Path::new("/")));
    assert!(mount_point_matches(Path::new(""), Path::new("")));
    assert!(!mount_point_matches(Path::new("one"), Path::new("two")));
}

#[test]
fn fuse_subtypes_are_split_off() {
    let m = one("120 30 0:55 / /home/u/remote rw,nosuid,nodev,relatime - fuse.sshfs u@host:/srv rw,user_id=1000,group_id=1000");
    assert_eq!(m.fs_type(), "fuse");
    assert_eq!(m.fs_subtype(), Some(OsStr::new("sshfs")));
    assert_eq!(m.fs_type_full(), "fuse.sshfs");
    assert_eq!(m.source(), "u@host:/srv");
    let m = one("121 30 0:56 / /x rw - fuse.a.b src rw");
    assert_eq!(m.fs_subtype(), Some(OsStr::new("a.b")));
}

#[test]
fn nsfs_roots_and_raw_spaces_in_super_options() {
    let m = one("500 30 0:4 net:[4026532281] /run/netns/x rw shared:200 - nsfs nsfs rw");
    assert_eq!(m.root(), Path::new("net:[4026532281]"));
    // A filesystem that prints a raw space in its options does not break the line.
    let m = one("501 30 0:57 / /y rw - weird src rw,label=a b");
    assert_eq!(m.super_options(), os(&["rw", "label=a b"]));
}

#[test]
fn errors_name_the_line_and_what_is_wrong() {
    let table = "83 63 0:44 / /var/lib/bar rw,relatime - tmpfs tmpfs rw\n\n224 62 /var/lib/docker/devicemapper/test/shared /var/lib/docker/devicemapper/test/shared rw,relatime master:1 shared:44 - ext4 /dev/mapper/ssd-root rw,seclabel,data=ordered\n";
    let e = parse_mountinfo(table.as_bytes()).unwrap_err();
    assert_eq!(e.line_no, 3);
    assert!(e.line.starts_with("224 62 /var/lib/docker"));
    assert_eq!(e.kind, ParseErrorKind::BadDevice);
    assert!(e.to_string().contains("line 3"), "{e}");
    assert!(e.to_string().contains("major:minor"), "{e}");

    let bad: [(&str, ParseErrorKind); 9] = [
        ("224 62 :0 / /a rw - ext4 s rw", ParseErrorKind::BadDevice),
        ("224 62 253: / /a rw - ext4 s rw", ParseErrorKind::BadDevice),
        (
            "224 62 foo:0 / /a rw - ext4 s rw",
            ParseErrorKind::BadDevice,
        ),
        (
            "224 62 253:bar / /a rw - ext4 s rw",
            ParseErrorKind::BadDevice,
        ),
        (
            "x 62 253:0 / /a rw - ext4 s rw",
            ParseErrorKind::BadNumber("mount ID"),
        ),
        (
            "1 99999999999999999999 253:0 / /a rw - ext4 s rw",
            ParseErrorKind::BadNumber("parent ID"),
        ),
        (
            "224 62 253:0 / /a rw shared:1 ext4 s rw",
            ParseErrorKind::MissingSeparator,
        ),
        (
            "224 62 253:0 / /a rw - ext4 s",
            ParseErrorKind::MissingField("super options"),
        ),
        (
            "224 62 253:0 /",
            ParseErrorKind::MissingField("mount point"),
        ),
    ];
    for (line, kind) in bad {
        let e = parse_mountinfo(line.as_bytes()).unwrap_err();
        assert_eq!(e.kind, kind, "{line}");
        assert_eq!(e.line_no, 1);
        assert_eq!(e.line, line);
    }
}

#[test]
fn a_table_from_this_kernel_parses() {
    let table = std::fs::read("/proc/self/mountinfo").unwrap();
    let v = parse_mountinfo(&table).unwrap();
    assert!(v.iter().any(|m| m.mount_point() == Path::new("/")));
    // Printing the entries again gives the kernel's bytes back, line for line.
    let mut again = Vec::new();
    for m in &v {
        m.write_line(&mut again);
    }
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&table)
    );
}

#[test]
fn proc_mounts_vectors() {
    let v = parse_proc_mounts(
        b"/dev/0 /path/to/0 type0 flags 0 0\n/dev/2 /path/to/2 type2 flags,1,2=3 2 2\n",
    )
    .unwrap();
    assert_eq!(v[0].source, "/dev/0");
    assert_eq!(v[0].mount_point, Path::new("/path/to/0"));
    assert_eq!(v[0].fs_type, "type0");
    assert_eq!(v[0].options, os(&["flags"]));
    assert_eq!((v[1].freq, v[1].pass), (2, 2));
    assert_eq!(v[1].options, os(&["flags", "1", "2=3"]));

    let v =
        parse_proc_mounts(b"tmpfs /tmp/mt/sp\\040ace tmpfs rw,relatime,size=1024k,mode=755 0 0\n")
            .unwrap();
    assert_eq!(v[0].mount_point, Path::new("/tmp/mt/sp ace"));
    // Empty source: the kernel prints a leading space.
    let v = parse_proc_mounts(b" /tmp/mt/del tmpfs rw,relatime 0 0\n").unwrap();
    assert_eq!(v[0].source, "");
    assert_eq!(v[0].mount_point, Path::new("/tmp/mt/del"));
    let v = parse_proc_mounts(br#"/dev/sda /x ext4 rw,context="a,b" 0 0"#).unwrap();
    assert_eq!(v[0].options, os(&["rw", r#"context="a,b""#]));

    for bad in [
        "/dev/0 /path/to/mount",
        "/dev/0 /path/to/mount type flags a 0",
        "/dev/0 /path/to/mount type flags 0 b",
    ] {
        let e = parse_proc_mounts(bad.as_bytes()).unwrap_err();
        assert_eq!(e.line, bad);
    }
    // Not the kernel's shape: it separates fields with one space and escapes blanks inside
    // them, so tabs and runs of spaces (fstab's format, Go's strings.Fields) are refused
    // rather than split into shifted fields.
    for bad in [
        "/dev/1\t/path/to/1\ttype1\tflags\t1\t1",
        "/dev/1    /path/to/1   type1\tflags 1 1",
        "/dev/1 /path/to/1 type1\tflags 1 1",
        "/dev/1  /path/to/1 type1 flags 1 1",
        "/dev/1 /path/to/1  type1 flags 1 1",
        "/dev/1 /path/to/1 type1  flags 1 1",
        "/dev/1 /path/to/1 type1 flags  1 1",
    ] {
        let e = parse_proc_mounts(bad.as_bytes()).unwrap_err();
        assert_eq!(e.line, bad);
        assert!(
            matches!(
                e.kind,
                ParseErrorKind::NotSingleSpaced | ParseErrorKind::BadNumber(_)
            ),
            "{bad:?}: {:?}",
            e.kind
        );
    }
    assert_eq!(
        parse_proc_mounts_line(b"/dev/1\t/path/to/1\ttype1\tflags\t1\t1").unwrap_err(),
        ParseErrorKind::NotSingleSpaced
    );
    assert_eq!(
        parse_proc_mounts_line(b"/dev/1    /path/to/1   type1 flags 1 1").unwrap_err(),
        ParseErrorKind::NotSingleSpaced
    );

    let table = std::fs::read("/proc/self/mounts").unwrap();
    let v = parse_proc_mounts(&table).unwrap();
    let info = parse_mountinfo(&std::fs::read("/proc/self/mountinfo").unwrap()).unwrap();
    assert_eq!(v.len(), info.len());
}

#[test]
fn fstab_tolerates_blanks_comments_and_missing_fields() {
    let v = parse_fstab(b"# comment\n\n/dev/1    /path/to/1   type1\tflags 1 1\n  UUID=x /my\\040dir ext4 defaults\n   \n").unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].options, os(&["flags"]));
    assert_eq!((v[0].freq, v[0].pass), (1, 1));
    assert_eq!(v[1].mount_point, Path::new("/my dir"));
    assert_eq!((v[1].freq, v[1].pass), (0, 0));
    let e = parse_fstab(b"a b\n").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::MissingField("filesystem type"));
    let e = parse_fstab(b"a b c d 0 0 extra\n").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TooManyFields);
}

fn table(lines: &[&str]) -> Vec<MountInfo> {
    parse_mountinfo(lines.join("\n").as_bytes()).unwrap()
}

const BASE: [&str; 3] = [
    "40 0 252:0 / / rw,relatime - ext4 /dev/vda1 rw",
    "45 40 7:1 / /mnt/disks/blkvol1 rw,relatime - ext4 /dev/loop1 rw",
    "50 40 0:30 / /dev rw - devtmpfs udev rw",
];

#[test]
fn mount_refs_vectors() {
    // mount-utils' SearchMountPoints test vectors.
    let refs = |extra: &[&str], src: &str| {
        let mut l = BASE.to_vec();
        l.extend_from_slice(extra);
        mount_refs(&table(&l), Path::new(src))
    };
    assert!(refs(&[], "/mnt/disks/vol1").is_empty());
    assert_eq!(
        refs(&["56 40 252:0 /mnt/disks/vol1 /var/lib/kubelet/pods/p/volumes/local-pv-test rw - ext4 /dev/vda1 rw"], "/mnt/disks/vol1"),
        [PathBuf::from("/var/lib/kubelet/pods/p/volumes/local-pv-test")]
    );
    assert!(refs(
        &["57 40 0:76 / /mnt/disks/vol1 rw - tmpfs tmpfs rw"],
        "/mnt/disks/vol1"
    )
    .is_empty());
    assert_eq!(
        refs(
            &[
                "57 40 0:76 / /mnt/disks/vol1 rw - tmpfs tmpfs rw",
                "58 40 0:76 / /var/lib/kubelet/pods/a/v rw - tmpfs tmpfs rw",
                "59 40 0:76 / /var/lib/kubelet/pods/b/v rw - tmpfs tmpfs rw",
            ],
            "/mnt/disks/vol1"
        ),
        [
            PathBuf::from("/var/lib/kubelet/pods/a/v"),
            PathBuf::from("/var/lib/kubelet/pods/b/v")
        ]
    );
    assert_eq!(
        refs(
            &[
                "190 40 0:46 /vol1 /mnt/vol1 rw - ext4 /dev/x rw",
                "62 40 0:46 /vol1/foo /var/lib/kubelet/pods/c/local-pv-test rw - ext4 /dev/x rw",
            ],
            "/mnt/vol1/foo"
        ),
        [PathBuf::from("/var/lib/kubelet/pods/c/local-pv-test")]
    );
    assert_eq!(
        refs(
            &[
                "342 40 252:0 /mnt/disks/vol2 /mnt/disks/vol2 rw - ext4 /dev/vda1 rw",
                "343 40 252:0 /mnt/disks/vol2 /var/lib/kubelet/pods/d/v rw - ext4 /dev/vda1 rw",
            ],
            "/mnt/disks/vol2"
        ),
        [PathBuf::from("/var/lib/kubelet/pods/d/v")]
    );
    assert_eq!(
        refs(
            &[
                "60 40 7:1 / /pods/one rw - ext4 /dev/loop1 rw",
                "61 40 7:1 / /pods/two rw - ext4 /dev/loop1 rw"
            ],
            "/mnt/disks/blkvol1"
        )
        .len(),
        2
    );
    // Our fix: a mount point with a space is found (Go compared escaped text).
    assert_eq!(
        refs(
            &[
                r"70 40 0:80 / /mnt/sp\040ace rw - tmpfs t rw",
                "71 40 0:80 / /pods/e rw - tmpfs t rw"
            ],
            "/mnt/sp ace"
        ),
        [PathBuf::from("/pods/e")]
    );
}

#[test]
fn mount_holding_picks_the_top_of_the_deepest_match() {
    let t = table(&[
        BASE[0],
        "60 40 0:50 / /a rw - tmpfs first rw",
        "61 60 0:51 / /a rw - tmpfs second rw",
        "62 40 0:52 / /ab rw - tmpfs other rw",
    ]);
    assert_eq!(mount_holding(&t, Path::new("/a/x")).unwrap().id, 61);
    assert_eq!(mount_holding(&t, Path::new("/a")).unwrap().id, 61);
    assert_eq!(mount_holding(&t, Path::new("/abc")).unwrap().id, 40);
    assert_eq!(mount_holding(&t, Path::new("/ab")).unwrap().id, 62);
}

#[tokio::test]
async fn consistent_read_is_bounded() {
    use std::cell::Cell;
    let n = Cell::new(0u32);
    // Changes on every read: gives up after 1 + 3 reads.
    let r = consistent_read(3, || {
        n.set(n.get() + 1);
        let v = n.get();
        async move { Ok::<_, std::io::Error>(vec![v as u8]) }
    })
    .await;
    assert!(matches!(
        r,
        Err(ConsistentReadError::Inconsistent { attempts: 3 })
    ));
    assert_eq!(n.get(), 4);
    // Settles on the third read: returns it.
    n.set(0);
    let r = consistent_read(10, || {
        n.set(n.get() + 1);
        let v = n.get().min(2);
        async move { Ok::<_, std::io::Error>(vec![v as u8]) }
    })
    .await
    .unwrap();
    assert_eq!(r, [2]);
    assert_eq!(n.get(), 3);
    // Zero attempts is one read; errors pass through.
    n.set(0);
    consistent_read(0, || {
        n.set(n.get() + 1);
        async { Ok::<_, std::io::Error>(vec![]) }
    })
    .await
    .unwrap();
    assert_eq!(n.get(), 1);
    let r = consistent_read(5, || async {
        Err::<Vec<u8>, _>(std::io::Error::other("x"))
    })
    .await;
    assert!(matches!(r, Err(ConsistentReadError::Read(_))));
}

#[cfg(feature = "serde")]
#[test]
fn serialises_decoded_strings() {
    let m = one(r"64 63 0:40 / /tmp/sp\040ace rw,relatime shared:3 - fuse.sshfs  rw");
    let j = serde_json::to_value(&m).unwrap();
    assert_eq!(j["mount_point"], "/tmp/sp ace");
    assert_eq!(j["source"], "");
    assert_eq!(j["fs_subtype"], "sshfs");
    assert_eq!(j["optional_fields"][0], "shared:3");
    let m = parse_mountinfo(b"1 0 0:1 / /\xff rw - t s rw")
        .unwrap()
        .remove(0);
    assert_eq!(
        serde_json::to_value(&m).unwrap()["mount_point"],
        "/\u{fffd}"
    );
}

// ---- properties ----

/// Bytes for a path component: anything but `/` and NUL, escapes included.
fn component() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => b'a'..=b'z',
            1 => Just(b' '), 1 => Just(b'\t'), 1 => Just(b'\n'), 1 => Just(b'\\'),
            1 => Just(b','), 1 => Just(b'-'), 1 => Just(b'#'),
            1 => 0x80u8..=0xff,
            1 => 1u8..=0x7f,
        ]
        .prop_filter("no slash or NUL", |b| *b != b'/' && *b != 0),
        1..8,
    )
}

fn abs_path() -> impl Strategy<Value = PathBuf> {
    prop::collection::vec(component(), 0..4).prop_map(|cs| {
        let mut p = Vec::from(&b"/"[..]);
        p.extend(cs.join(&b'/'));
        PathBuf::from(OsString::from_vec(p))
    })
}

fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    // Anything but NUL (never in a kernel string) and `"` (quotes pair up in options).
    prop::collection::vec(
        any::<u8>().prop_filter("", |b| *b != 0 && *b != b'"'),
        0..max,
    )
}

fn optional_field() -> impl Strategy<Value = OptionalField> {
    prop_oneof![
        any::<u64>().prop_map(OptionalField::Shared),
        any::<u64>().prop_map(OptionalField::Master),
        any::<u64>().prop_map(OptionalField::PropagateFrom),
        Just(OptionalField::Unbindable),
        "[a-z_]{1,8}:[0-9]{1,3}x".prop_map(OptionalField::Other),
    ]
}

prop_compose! {
    fn mount_info()(
        id in any::<u64>(), parent_id in any::<u64>(),
        major in any::<u32>(), minor in any::<u32>(),
        root in abs_path(), root_deleted in any::<bool>(),
        mount_point in abs_path(),
        mount_options in prop::collection::vec("[a-z_=0-9]{1,8}", 0..4),
        optional_fields in prop::collection::vec(optional_field(), 0..4),
        fs_type in "[a-z0-9_]{1,8}",
        fs_subtype in prop::option::of(any_bytes(8).prop_filter("non-empty", |v| !v.is_empty())),
        source in any_bytes(12),
        super_options in prop::collection::vec(any_bytes(10).prop_filter("non-empty", |v| !v.is_empty()), 0..5),
    ) -> MountInfo {
        let mut f = MountInfoFields::default();
        (f.id, f.parent_id, f.major, f.minor) = (id, parent_id, major, minor);
        (f.root, f.root_deleted, f.mount_point) = (root, root_deleted, mount_point);
        (f.mount_options, f.optional_fields, f.fs_type) = (mount_options, optional_fields, fs_type);
        f.fs_subtype = fs_subtype.map(OsString::from_vec);
        f.source = OsString::from_vec(source);
        f.super_options = super_options.into_iter().map(OsString::from_vec).collect();
        f.into()
    }
}

prop_compose! {
    fn mount_entry()(
        source in any_bytes(12), mount_point in abs_path(), fs_type in "[a-z0-9_]{1,8}",
        fs_subtype in prop::option::of(any_bytes(8).prop_filter("non-empty", |v| !v.is_empty())),
        options in prop::collection::vec(any_bytes(10).prop_filter("non-empty", |v| !v.is_empty()), 1..5),
        freq in 0u32..10, pass in 0u32..10,
    ) -> MountEntry {
        let mut e = MountEntry::new(OsString::from_vec(source), mount_point, fs_type);
        e.fs_subtype = fs_subtype.map(OsString::from_vec);
        e.options = options.into_iter().map(OsString::from_vec).collect();
        (e.freq, e.pass) = (freq, pass);
        e
    }
}

fn config() -> ProptestConfig {
    // PROPTEST_CASES overrides this for longer runs.
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mountinfo_round_trips(entries in prop::collection::vec(mount_info(), 0..6)) {
        let mut text = Vec::new();
        for e in &entries {
            e.write_line(&mut text);
        }
        let back = parse_mountinfo(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, entries);
    }

    /// A table parsed in pieces of whole lines (as `read_mount_table` and `Mount::list` parse
    /// it) gives what the whole table gives: the same entries, or the same error with the
    /// same line number; valid tables and broken ones alike.
    #[test]
    fn pieces_parse_as_the_whole_table(
        entries in prop::collection::vec(mount_info(), 0..8),
        junk in prop::collection::vec(prop_oneof![Just(b'1'), Just(b' '), Just(b'-'), Just(b'\n'), any::<u8>()], 0..40),
        junk_at in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut lines: Vec<Vec<u8>> = entries.iter().map(|e| { let mut l = Vec::new(); e.write_line(&mut l); l }).collect();
        let at = junk_at.index(lines.len() + 1);
        lines.insert(at, junk);
        let text = lines.concat();
        let ends: Vec<usize> = text.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1).collect();
        let mut at: Vec<usize> = if ends.is_empty() { Vec::new() } else { cuts.iter().map(|c| ends[c.index(ends.len())]).collect() };
        at.push(text.len());
        at.sort_unstable();
        at.dedup();
        let (mut start, mut lines, mut got) = (0, 0, Vec::new());
        let mut result = Ok(());
        for end in at {
            if end == start { continue; }
            result = parse_mountinfo_piece(&text[start..end], &mut lines, &mut got);
            if result.is_err() { break; }
            start = end;
        }
        match (parse_mountinfo(&text), result) {
            (Ok(whole), Ok(())) => prop_assert_eq!(got, whole),
            (Err(whole), Err(piece)) => prop_assert_eq!(piece, whole),
            (whole, piece) => prop_assert!(false, "whole {:?}, pieces {:?}", whole.map(|v| v.len()), piece),
        }
    }

    #[test]
    fn proc_mounts_round_trips(entries in prop::collection::vec(mount_entry(), 0..6)) {
        let mut text = Vec::new();
        for e in &entries {
            e.write_line(&mut text);
        }
        let back = parse_proc_mounts(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, entries);
    }

    #[test]
    fn unescape_inverts_escape(raw in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut esc = Vec::new();
        escape_into(&raw, b" \t\n\\", &mut esc);
        prop_assert!(!esc.iter().any(|b| b" \t\n".contains(b)));
        prop_assert_eq!(unescape(&esc), raw);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(
        prop_oneof![any::<u8>(), Just(b' '), Just(b'-'), Just(b'\n'), Just(b':'), Just(b'\\'), b'0'..=b'9'], 0..300)) {
        let _ = parse_mountinfo(&bytes);
        let _ = parse_proc_mounts(&bytes);
        let _ = parse_fstab(&bytes);
    }

    #[test]
    fn mutated_real_lines_never_panic(cut in 0usize..120, byte in any::<u8>()) {
        let mut line = b"224 62 253:0 /var/lib/x /var/lib/x rw,relatime master:1 shared:44 - ext4 /dev/mapper/ssd-root rw,seclabel,data=ordered".to_vec();
        let i = cut % line.len();
        line[i] = byte;
        let _ = parse_mountinfo(&line);
        line.truncate(i);
        let _ = parse_mountinfo(&line);
    }
}

/// The entries of a table share one buffer: each is the entry its line parses to alone, an
/// entry kept after the others are gone still reads right, and equality and hashing do not
/// depend on where an entry's text lies.
#[test]
fn table_entries_share_a_buffer_and_equal_their_lines_parsed_alone() {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let table = b"36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                  37 36 0:40 / /tmp/x rw shared:2 unbindable - fuse.sshfs me@h:/ rw,context=\"a,b\"\n\
                  38 36 0:41 /f//deleted /tmp/y ro - tmpfs \\134src rw,size=1k\n";
    let all = parse_mountinfo(table).unwrap();
    assert_eq!(all.len(), 3);
    let hash = |m: &MountInfo| {
        let mut h = DefaultHasher::new();
        m.hash(&mut h);
        h.finish()
    };
    for (m, line) in all.iter().zip(table.split(|&b| b == b'\n')) {
        let alone = parse_mountinfo_line(line).unwrap();
        assert_eq!(*m, alone);
        assert_eq!(hash(m), hash(&alone));
        let rebuilt = MountInfo::from(m.to_fields());
        assert_eq!(*m, rebuilt);
        assert_eq!(hash(m), hash(&rebuilt));
    }
    assert_ne!(all[0], all[1]);
    let kept = all[1].clone();
    drop(all);
    assert_eq!(kept.mount_point(), Path::new("/tmp/x"));
    assert_eq!(kept.fs_type_full(), OsStr::new("fuse.sshfs"));
    assert_eq!(kept.super_options(), ["rw", "context=\"a,b\""]);
    assert_eq!(
        kept.optional_fields(),
        [OptionalField::Shared(2), OptionalField::Unbindable]
    );
    let mut line = Vec::new();
    kept.write_line(&mut line);
    assert_eq!(
        line,
        b"37 36 0:40 / /tmp/x rw shared:2 unbindable - fuse.sshfs me@h:/ rw,context=\"a,b\"\n"
    );
}
