//! The command line, and what it picks: the images a run trains and tests on, and the
//! texts a test image enters with.

use crate::data::{flickr30k_test, flickr8k, nocaps, remove_same_photos, shuffle};
use crate::die;
use clap::{ArgAction, Parser};
use std::path::PathBuf;

/// Retrieval quality of libavg on text proxies (Flickr, nocaps), beside exact dense search.
#[derive(Parser)]
#[command(name = "avg-eval")]
pub(crate) struct Args {
    /// all-MiniLM-L6-v2 directory: the sentence encoder, and the generator's backbone
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// A T5 checkpoint as the generator instead of MiniLM + a voken decoder
    #[arg(long)]
    pub(crate) generator_model: Option<PathBuf>,
    /// Directory holding flickr8k/ and flickr30k/
    #[arg(long, default_value = "../shared/data")]
    pub(crate) data: PathBuf,
    /// Where the JSON, Markdown, log and saved index go
    #[arg(long, default_value = "eval-out")]
    pub(crate) out: PathBuf,
    /// Images to test on (the `-val` sets: choose settings there, never on test). The
    /// Flickr sets' encoder saw their caption pairs in training; nocaps' did not.
    #[arg(long, default_value = "flickr8k", value_parser = ["flickr8k", "flickr8k-val", "flickr30k", "nocaps", "nocaps-val"])]
    pub(crate) test_set: String,
    /// A file in the nocaps layout whose images replace the test images (training and
    /// validation unchanged)
    #[arg(long)]
    pub(crate) test_file: Option<PathBuf>,
    /// Where the training pairs come from: nocaps training images (in-domain) or
    /// Flickr8k (transfer: the generator never sees a nocaps caption). Default: nocaps
    /// for the nocaps test sets, Flickr8k otherwise.
    #[arg(long, value_parser = ["nocaps", "flickr8k"])]
    pub(crate) train_on: Option<String>,
    /// Queries per test image (its captions after the first and the attached ones)
    #[arg(long, default_value_t = usize::MAX)]
    pub(crate) queries_per_image: usize,
    /// What the generator learns of a test image: `words`, two of its captions attached
    /// as its own texts (never queries)
    #[arg(long, default_value = "unseen", value_parser = ["indexed", "caption-free", "words", "unseen"])]
    pub(crate) track: String,
    /// Seed of the split
    #[arg(long, default_value_t = 2024)]
    pub(crate) seed: u64,
    /// Seed of both trainings (the tokenizer's k-means start, the generator's weights
    /// and batches): a second training seed for rows that lie close
    #[arg(long, default_value_t = 42)]
    pub(crate) train_seed: u64,
    /// N, the codebook size
    #[arg(long, default_value_t = 1024)]
    pub(crate) n: usize,
    /// M, the codes per image
    #[arg(long, default_value_t = 4)]
    pub(crate) m: usize,
    /// Beam sizes of the generator's rows (the quantiser's rows use 20)
    #[arg(long, value_delimiter = ',', default_value = "1,5,10,20,30,40")]
    pub(crate) beams: Vec<usize>,
    #[arg(long, default_value_t = 20)]
    pub(crate) tok_epochs: usize,
    /// Generator epochs (0: no generator, only the dense and the quantiser's rows)
    #[arg(long, default_value_t = 10)]
    pub(crate) gen_epochs: usize,
    /// Tokenizer without L_align (ablation)
    #[arg(long = "no-align", action = ArgAction::SetFalse)]
    pub(crate) align: bool,
    /// Code embeddings at random, not from the codebook (ablation)
    #[arg(long = "no-init", action = ArgAction::SetFalse)]
    pub(crate) init: bool,
    /// Generator without L_dis (ablation)
    #[arg(long = "no-dis", action = ArgAction::SetFalse)]
    pub(crate) dis: bool,
    /// Share of each batch that gets L_dis
    #[arg(long, default_value_t = 1.0)]
    pub(crate) dis_fraction: f32,
    /// Images the models train on (at most 6,000 of Flickr8k, 1,500 of nocaps)
    #[arg(long, default_value_t = 6000)]
    pub(crate) train_images: usize,
    /// Name of this run's output files
    #[arg(long, default_value = "main")]
    pub(crate) label: String,
    /// Dense weights of the fused rows
    #[arg(long, value_delimiter = ',', default_value = "0,5,10,20,40")]
    pub(crate) dense_weights: Vec<f32>,
    /// min_candidates of the fused rows, each crossed with every dense weight
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub(crate) min_candidates: Vec<usize>,
    /// Weights of the quantiser's prior in the generator's fused rows (0: none), each
    /// crossed with the fused rows' settings
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub(crate) quantizer_weights: Vec<f32>,
    /// Attached texts not learned (ablation)
    #[arg(long = "no-index-texts", action = ArgAction::SetFalse)]
    pub(crate) index_texts: bool,
    /// No vector memory slot (ablation)
    #[arg(long = "no-index-vectors", action = ArgAction::SetFalse)]
    pub(crate) index_vectors: bool,
    /// Withhold the first N test images, add them after training and run an indexing pass
    #[arg(long)]
    pub(crate) incremental: Option<usize>,
    #[arg(long, default_value_t = 2)]
    pub(crate) pass_epochs: usize,
    /// Search the index a previous run of this label saved, without training
    #[arg(long)]
    pub(crate) reuse: bool,
    /// Leave out plain beam search and rerank
    #[arg(long)]
    pub(crate) fused_only: bool,
    /// Repeat the pairs of images with fewer than the median number per image up to it
    #[arg(long)]
    pub(crate) balance_images: bool,
    /// Search among the test images only (`test`), or among the training images too
    /// (`all`: a larger pool, where `min_candidates` is a smaller share of it; an
    /// `--incremental` run always searches all)
    #[arg(long, default_value = "test", value_parser = ["test", "all"])]
    pub(crate) pool: String,
    /// The weights searches read (training is the same either way: with `--reuse`, both
    /// can be measured on one trained index)
    #[arg(long, default_value = "int8", value_parser = ["f32", "int8"])]
    pub(crate) search_weights: String,
    /// How the index keeps image vectors in memory (`VectorStorage`), which the `libavg
    /// dense scan` row reads
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "int8"])]
    pub(crate) vector_storage: String,
    /// Only the dense rows (the baseline and libavg's dense scan): with `--reuse`, a
    /// quick comparison of vector storages
    #[arg(long)]
    pub(crate) dense_only: bool,
}

/// Captions of a test image attached as its own words on the `words` track.
pub(crate) const WORDS: usize = 2;

/// The texts a test image enters with: on the indexed track its first caption (its
/// vector's source), on the words track its next `WORDS` captions; never a query.
pub(crate) fn own_texts<'a>(track: &str, caps: &'a [String]) -> Option<&'a [String]> {
    match track {
        "indexed" => Some(&caps[..1]),
        "words" => Some(&caps[1..=WORDS]),
        _ => None,
    }
}

pub(crate) fn train_on(a: &Args) -> &str {
    a.train_on.as_deref().unwrap_or(if a.test_set.starts_with("nocaps") { "nocaps" } else { "flickr8k" })
}

pub(crate) type Images = Vec<(String, Vec<String>)>;

/// The training and test images of the run.
///
/// Flickr8k: names sorted, shuffled by `--seed`; 6,000 train, 1,000 validate, 1,000 test
/// (`flickr30k` tests on Flickr30K's test images and trains on Flickr8k's others).
/// nocaps: ids sorted, shuffled by `--seed`; 1,500 train, 1,000 validate, 1,000 test.
/// `--test-file` replaces the test images; training never changes with it.
pub(crate) fn split(a: &Args) -> (Images, Images) {
    let nocaps_file = a.data.join("nocaps/captions.json");
    let flickr = || {
        let mut images = flickr8k(&a.data);
        shuffle(&mut images, a.seed);
        images
    };
    let nocaps_split = || {
        // Ten captions each: the image's own, two words, seven queries.
        let mut images = nocaps(&nocaps_file, 2 + WORDS);
        shuffle(&mut images, a.seed);
        if images.len() < 3500 {
            die(&format!("{}: {} images, the split needs 3,500", nocaps_file.display(), images.len()));
        }
        images
    };
    let mut test: Images = match a.test_set.as_str() {
        "flickr8k" => flickr()[7000..].iter().take(1000).cloned().collect(),
        "flickr8k-val" => flickr()[6000..7000].to_vec(),
        "flickr30k" => flickr30k_test(&a.data),
        "nocaps" => nocaps_split()[2500..3500].to_vec(),
        "nocaps-val" => nocaps_split()[1500..2500].to_vec(),
        other => die(&format!("unknown test set {other}")),
    };
    if let Some(file) = &a.test_file {
        test = nocaps(file, 2 + WORDS);
    }
    let train = match train_on(a) {
        "nocaps" => nocaps_split()[..a.train_images.min(1500)].to_vec(),
        _ => {
            let mut images = flickr();
            if a.test_set == "flickr30k" {
                let left_out = remove_same_photos(&mut images, &test);
                eprintln!("{left_out} Flickr8k images left out of training: they are Flickr30K test images");
            }
            images[..a.train_images.min(6000)].to_vec()
        }
    };
    (train, test)
}
