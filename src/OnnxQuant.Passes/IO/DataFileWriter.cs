using Microsoft.Win32.SafeHandles;
using OnnxQuant.IR;

namespace OnnxQuant.IO;

/// <summary>
/// Writes the external data file of a save: where each large initializer's bytes go. When the graph's spill file holds
/// only tensors the save keeps, each at an aligned offset with nothing dead between them (a rewrite pass's output),
/// the spill file becomes the data file: the other tensors are appended to it (those of the input it already holds a
/// copy of, <see cref="SpillFile.TryPrecopy"/>, stay where they are) and it is given the data file's temporary name,
/// so the rewritten weights, most of the bytes, are written once instead of twice.
/// </summary>
internal static class DataFileWriter
{
    /// <summary>
    /// Writes the data file as <paramref name="path"/> (which must not exist) and returns each initializer's offset in
    /// it, in <see cref="Graph.Initializers"/> order; null for a tensor stored inline. The file is on the disk when
    /// this returns; it is not created when no tensor goes to it.
    /// </summary>
    public static long?[] Write(Graph graph, string path, SaveOptions options, CancellationToken cancel)
    {
        var tensors = graph.Initializers.Values.ToArray();
        var offsets = new long?[tensors.Length];
        if (!tensors.Any(t => IsExternal(t, options)))
            return offsets;
        if (Adoptable(graph.Spill, tensors, options) is { } spill
            && spill.TryBecome(path, (handle, length) => AppendTo(handle, length, spill, tensors, offsets, options, cancel)))
            return offsets;
        Array.Clear(offsets);
        using var data = new PositionalFileWriter(path);
        WriteTensors(data, null, tensors, offsets, options, cancel);
        data.FlushToDisk();
        return offsets;
    }

    /// <summary>True for a tensor whose bytes go to the data file rather than into the model proto.</summary>
    public static bool IsExternal(Tensor tensor, SaveOptions options) =>
        tensor.StringProto is null && tensor.ByteLength >= options.ExternalThreshold;

    private static long AppendTo(SafeFileHandle handle, long length, SpillFile spill, Tensor[] tensors, long?[] offsets, SaveOptions options,
        CancellationToken cancel)
    {
        using var data = new PositionalFileWriter(handle, length);
        WriteTensors(data, spill, tensors, offsets, options, cancel);
        spill.WaitForWrites(); // the queued copies of the input's tensors
        data.FlushToDisk();
        return data.Position;
    }

    // Tensors already in `inPlace` keep their offsets there; the others are appended, each aligned.
    private static void WriteTensors(PositionalFileWriter data, SpillFile? inPlace, Tensor[] tensors, long?[] offsets, SaveOptions options,
        CancellationToken cancel)
    {
        var chunk = new byte[16 << 20];
        for (int i = 0; i < tensors.Length; i++)
        {
            if (!IsExternal(tensors[i], options))
                continue;
            cancel.ThrowIfCancellationRequested();
            if (inPlace?.OffsetOf(tensors[i]) is { } at)
            {
                offsets[i] = at;
                continue;
            }
            offsets[i] = data.Align(options.Alignment);
            // An unchanged weight of the input goes to the adopted spill by its direct writer, not the page cache.
            if (inPlace is not null && tensors[i].MappedLocation is { } mapped && offsets[i] % SpillFile.Alignment == 0
                && inPlace.TryQueueCopy(offsets[i]!.Value, mapped.File.ReadHandle, mapped.Offset, tensors[i].ByteLength))
            {
                data.Skip(tensors[i].ByteLength);
                continue;
            }
            tensors[i].WriteTo(data, chunk);
            data.StartWriteback();
        }
    }

    // The spill file qualifies when the tensors the save keeps in it (written there by passes, or precopied from the
    // input) tile it exactly: aligned as the data file must be, none shared by two initializers, no bytes of a
    // replaced tensor left between them.
    private static SpillFile? Adoptable(SpillFile? spill, Tensor[] tensors, SaveOptions options)
    {
        if (spill is not { CanBecomeNamed: true } || options.Alignment <= 0 || SpillFile.Alignment % options.Alignment != 0)
            return null;
        if (tensors.Any(t => spill.OffsetOf(t) is not null && !IsExternal(t, options)))
            return null;
        return spill.TiledExactlyBy(tensors) ? spill : null;
    }
}
