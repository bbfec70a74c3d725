using System.Runtime.InteropServices;

namespace OnnxQuant.IO;

/// <summary>What a path names on disk, as stat(2) tells it.</summary>
public enum FileKind
{
    Regular,
    Directory,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    Missing,
    /// <summary>The platform cannot tell (not Linux, or no statx): treated as a regular file.</summary>
    Unknown,
}

/// <summary>
/// Tells a regular file from a named pipe or a device before a reader opens it: .NET reports all of them as plain files
/// of length 0, and reading /dev/zero never ends while opening a FIFO waits for a writer (docs/security.md).
/// </summary>
public static partial class FileKinds
{
    public static FileKind Of(string path)
    {
        if (!OperatingSystem.IsLinux())
            return WithoutStat(path);
        try
        {
            return FromMode(StatMode(path));
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return WithoutStat(path);
        }
    }

    // What .NET alone can tell: a folder, something else that exists, or nothing.
    private static FileKind WithoutStat(string path) =>
        File.Exists(path) ? FileKind.Unknown : Directory.Exists(path) ? FileKind.Directory : FileKind.Missing;

    /// <summary>
    /// Refuses (exit 3) a path that is not a regular file, naming what it is; <paramref name="what"/> says what was
    /// expected ("a data file for --data"). A missing path is left to the caller's own message.
    /// </summary>
    public static void RequireRegular(string path, string what)
    {
        var kind = Of(path);
        if (kind is FileKind.Regular or FileKind.Unknown or FileKind.Missing)
            return;
        throw new OnnxQuantException(path, $"is {Describe(kind)}, not {what}: give a regular file");
    }

    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a folder",
        FileKind.Fifo => "a named pipe (FIFO)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Missing => "missing",
        _ => "a regular file",
    };

    // struct statx is the same on every Linux architecture: stx_mode is the 16 bits at offset 28 of 256 bytes.
    private const int StatxSize = 256, ModeOffset = 28, AtFdCwd = -100, StatxType = 1;

    private static unsafe int StatMode(string path)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
            return -1;
        return *(ushort*)(buffer + ModeOffset);
    }

    private static FileKind FromMode(int mode) => mode < 0 ? FileKind.Missing : (mode & 0xF000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0x1000 => FileKind.Fifo,
        0x2000 => FileKind.CharacterDevice,
        0x6000 => FileKind.BlockDevice,
        0xC000 => FileKind.Socket,
        _ => FileKind.Unknown,
    };

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
