"""Text analysis shared by dedup and negatives: jieba tokens (``tokenize``), BM25 terms as lists (``analyze``) and as
arrays (``terms``), and the function words both leave out (``stopwords``). It sits below dedup and negatives and
imports neither; inside it the arrows run one way: ``analyze`` -> ``tokenize`` -> ``terms`` -> ``stopwords``."""
