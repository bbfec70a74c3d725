using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// A read-only memory mapping of a whole external-data file. Tensors slice it lazily, so a model whose weights
/// exceed 2 GB loads without copying anything until a pass asks for one tensor's values.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly SafeMemoryMappedViewHandle? _handle;
    private byte* _pointer;

    public MappedFile(string path)
    {
        Path = path;
        Length = new FileInfo(path).Length;
        if (Length == 0)
            return; // an empty file cannot be mapped; every slice of it is out of range anyway
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        _handle = _view.SafeMemoryMappedViewHandle;
        _handle.AcquirePointer(ref _pointer);
        _pointer += _view.PointerOffset;
    }

    public string Path { get; }

    private SafeFileHandle? _readHandle;

    /// <summary>The file opened for reading (opened on first use: kernel copies out of it when a model is saved).</summary>
    internal SafeFileHandle ReadHandle => _readHandle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read);

    public long Length { get; }

    /// <summary>A view of bytes [offset, offset+length). The caller has checked the range against <see cref="Length"/>.</summary>
    public ReadOnlySpan<byte> Slice(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_pointer == null && Length > 0, this);
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, {offset + length}) is outside {Path} ({Length} bytes)");
        return length == 0 ? ReadOnlySpan<byte>.Empty : new ReadOnlySpan<byte>(_pointer + offset, length);
    }

    /// <summary>
    /// Drops the pages of [offset, offset+length) from this process's resident set once a tensor has been read, so a pass
    /// that walks a multi-GB model keeps its RSS near one tensor (the pages stay in the OS page cache).
    /// </summary>
    public void Release(long offset, long length)
    {
        if (_pointer == null || length <= 0 || !OperatingSystem.IsLinux())
            return;
        const long page = 4096;
        long start = (offset + page - 1) / page * page; // whole pages inside the range only: neighbours may be in use
        long end = (offset + length) / page * page;
        if (end <= start)
            return;
        // The view maps the file from offset 0, page-aligned, so file pages and view pages coincide.
        if (((nint)_pointer & (nint)(page - 1)) != 0)
            return;
        _ = Madvise((nint)(_pointer + start), (nuint)(end - start), MadvDontNeed);
    }

    private const int MadvDontNeed = 4;

    [DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int Madvise(nint address, nuint length, int advice);

    public void Dispose()
    {
        if (_handle is not null && _pointer != null)
        {
            _handle.ReleasePointer();
            _pointer = null;
        }
        _view?.Dispose();
        _map?.Dispose();
        _readHandle?.Dispose();
    }
}
