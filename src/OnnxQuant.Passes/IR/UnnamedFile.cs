using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// Linux calls for a file that has no name until it is finished: <c>open(O_TMPFILE)</c> creates it nameless in a folder
/// (a killed process leaves nothing behind), <c>linkat</c> gives it a name once it is complete, and
/// <c>sync_file_range</c> starts writing its pages to the disk early, so the <c>fsync</c> at the end of a save waits for
/// little, and a second <c>O_DIRECT</c> handle writes around the page cache (<see cref="DirectWriter"/>). Elsewhere,
/// or where the file system refuses (no O_TMPFILE, no /proc), each call says so and callers take their portable path.
/// </summary>
internal static class UnnamedFile
{
    private const int WriteOnly = 1, ReadWrite = 2, CloseOnExec = 0x80000, AtCurrentFolder = -100, AtFollowLinks = 0x400, StartWrite = 2;

    /// <summary>A nameless read-write file in <paramref name="folder"/>, or null where this system cannot create one.</summary>
    public static SafeFileHandle? TryCreate(string folder)
    {
        // O_TMPFILE is __O_TMPFILE | O_DIRECTORY, and O_DIRECTORY differs between the two architectures .NET runs Linux on.
        if (LinuxFlag(x64: 0x410000, arm64: 0x404000) is not { } tmpFile)
            return null;
        try
        {
            return Opened(Open(folder, tmpFile | ReadWrite | CloseOnExec, 0x1A4 /* 0644 */));
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Gives a file from <see cref="TryCreate"/> the name <paramref name="path"/> (which must not exist); false if that failed.</summary>
    public static bool TryLink(SafeFileHandle file, string path)
    {
        try
        {
            return WithDescriptor(file, fd => LinkAt(AtCurrentFolder, $"/proc/self/fd/{fd}", AtCurrentFolder, path, AtFollowLinks) == 0);
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// A second, write-only handle on <paramref name="file"/> that bypasses the page cache (<c>O_DIRECT</c>): writes go
    /// from this process's buffer to the disk without the kernel copying them into fresh cache pages first. Buffers,
    /// offsets and lengths must be multiples of 4096. Null where the file system has no direct I/O (tmpfs) or this is
    /// not Linux.
    /// </summary>
    public static SafeFileHandle? TryOpenDirect(SafeFileHandle file)
    {
        if (LinuxFlag(x64: 0x4000, arm64: 0x10000) is not { } direct)
            return null;
        try
        {
            return Opened(WithDescriptor(file, fd => Open($"/proc/self/fd/{fd}", direct | WriteOnly | CloseOnExec, 0)));
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Asks the kernel to start writing a range's dirty pages to the disk without waiting for them (a hint: failures are ignored).</summary>
    public static void StartWriteback(SafeFileHandle file, long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0 || _noWriteback)
            return;
        try
        {
            WithDescriptor(file, fd => SyncFileRange(fd, offset, length, StartWrite));
        }
        catch (EntryPointNotFoundException)
        {
            _noWriteback = true;
        }
    }

    // An open(2) flag whose value differs by architecture; null off Linux or on another architecture.
    private static int? LinuxFlag(int x64, int arm64) => !OperatingSystem.IsLinux() ? null : RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => x64,
        Architecture.Arm64 => arm64,
        _ => null,
    };

    private static SafeFileHandle? Opened(int fd) => fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);

    // The handle's descriptor, kept from being closed while the call uses it.
    private static T WithDescriptor<T>(SafeFileHandle file, Func<int, T> call)
    {
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            return call((int)file.DangerousGetHandle());
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    private static volatile bool _noWriteback;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "linkat", SetLastError = true)]
    private static extern int LinkAt(int oldFolder, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath, int newFolder,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath, int flags);

    [DllImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static extern int SyncFileRange(int fd, long offset, long length, uint flags);
}
