using System.Runtime.InteropServices;
using OnnxQuant.Calibrate.Data;

namespace OnnxQuant.Tests.NonText;

/// <summary>The .npy/.npz reader against byte layouts written by the format's rules (magic, version, header dict, C-order data).</summary>
public sealed class NpyFileTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_float32_array_reads_with_its_shape_and_values_in_both_header_versions(int major)
    {
        float[] values = [1.5f, -2f, 3.25f, 0f, 7f, -0.5f];
        var array = NpyFile.Parse(Npy.Bytes("<f4", [2, 3], MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), major: major), "x", "x.npy");

        Assert.Equal(NpyType.Float32, array.Type);
        Assert.Equal(new long[] { 2, 3 }, array.Shape);
        Assert.Equal(values, MemoryMarshal.Cast<byte, float>(array.Data).ToArray());
    }

    [Theory]
    [InlineData("<f2", NpyType.Float16, 2)]
    [InlineData("<i8", NpyType.Int64, 8)]
    [InlineData("<i4", NpyType.Int32, 4)]
    [InlineData("|b1", NpyType.Bool, 1)]
    [InlineData("|u1", NpyType.UInt8, 1)]
    public void Every_supported_dtype_reads_with_its_item_size(string descr, NpyType type, int itemSize)
    {
        var array = NpyFile.Parse(Npy.Bytes(descr, [4], new byte[4 * itemSize]), "x", "x.npy");

        Assert.Equal((type, 4L, 4 * itemSize), (array.Type, array.ElementCount, array.Data.Length));
    }

    [Theory]
    [InlineData(">f4", false, "'>f4'")]
    [InlineData("<f8", false, "'<f8'")]
    [InlineData("<f4", true, "Fortran (column-major) order")]
    public void Big_endian_other_dtypes_and_fortran_order_are_refused_by_name(string descr, bool fortran, string named)
    {
        var e = Assert.Throws<OnnxQuantException>(() => NpyFile.Parse(Npy.Bytes(descr, [2], new byte[16], fortran), "x", "x.npy"));

        Assert.Equal(ExitCode.Unsupported, e.ExitCode);
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void Wrong_magic_and_a_data_size_that_does_not_match_the_shape_are_bad_input()
    {
        var magic = Assert.Throws<OnnxQuantException>(() => NpyFile.Parse("not numpy at all"u8.ToArray(), "x", "x.npy"));
        var size = Assert.Throws<OnnxQuantException>(() => NpyFile.Parse(Npy.Bytes("<f4", [3], new byte[8]), "x", "x.npy"));

        Assert.Equal(ExitCode.BadInput, magic.ExitCode);
        Assert.Contains("magic", magic.Message);
        Assert.Equal(ExitCode.BadInput, size.ExitCode);
        Assert.Contains("holds 8 data bytes, but shape (3) of float32 (4 bytes each) needs 12", size.Message);
    }

    [Fact]
    public void A_npz_holds_its_arrays_by_member_name_stored_or_deflated()
    {
        string path = _temp.File("feeds.npz");
        Npy.WriteNpz(path, ("pixel_values", Npy.Floats([2, 2], [1, 2, 3, 4])), ("ids", Npy.Bytes("<i8", [2], MemoryMarshal.AsBytes(new long[] { 7, 9 }.AsSpan()).ToArray())));

        var arrays = NpyFile.ReadNpz(path);

        Assert.Equal(["pixel_values", "ids"], arrays.Select(a => a.Name));
        Assert.Equal(new float[] { 1, 2, 3, 4 }, MemoryMarshal.Cast<byte, float>(arrays[0].Data).ToArray());
        Assert.Equal(new long[] { 7, 9 }, MemoryMarshal.Cast<byte, long>(arrays[1].Data).ToArray());
    }
}
